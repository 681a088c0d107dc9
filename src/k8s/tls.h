// OpenSSL helpers for the API client: PEM parsing into owned handles, with messages that can
// be prefixed by the field or file they came from.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kproxy/status.h"

namespace kproxy::k8s::tls {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PKeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PKeyPtr = std::unique_ptr<EVP_PKEY, PKeyFree>;
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;

// Every CERTIFICATE block, in order; an error if there is none or one does not parse.
Expected<std::vector<X509Ptr>> parse_certificates(std::string_view pem);
// The first private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
Expected<PKeyPtr> parse_private_key(std::string_view pem);
// A store holding every certificate of `pem`.
Expected<StorePtr> make_store(std::string_view pem);
// Ok when the key belongs to the certificate.
Status check_key_matches(X509* cert, EVP_PKEY* key);

// The reason of the oldest queued OpenSSL error ("" if none); clears the queue.
std::string take_openssl_error();

}  // namespace kproxy::k8s::tls
