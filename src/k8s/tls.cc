#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>

namespace kproxy::k8s::tls {
namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr memory_bio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

}  // namespace

std::string take_openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "";
  if (const char* reason = ERR_reason_error_string(code)) return reason;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

Expected<std::vector<X509Ptr>> parse_certificates(std::string_view pem) {
  ERR_clear_error();
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string_view::npos) {
    return Error("no PEM certificate found");
  }
  auto bio = memory_bio(pem);
  if (!bio) return Error("out of memory");
  std::vector<X509Ptr> certs;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  // The loop ends with "no start line" at the end of input; anything else is a broken block.
  const unsigned long code = ERR_peek_last_error();
  if (code != 0 && !(ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE)) {
    return Error("bad PEM certificate: " + take_openssl_error());
  }
  ERR_clear_error();
  if (certs.empty()) return Error("no PEM certificate found");
  return certs;
}

Expected<PKeyPtr> parse_private_key(std::string_view pem) {
  ERR_clear_error();
  if (pem.find("PRIVATE KEY-----") == std::string_view::npos) return Error("no PEM private key found");
  auto bio = memory_bio(pem);
  if (!bio) return Error("out of memory");
  PKeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Error("bad PEM private key: " + take_openssl_error());
  ERR_clear_error();
  return key;
}

Expected<StorePtr> make_store(std::string_view pem) {
  auto certs = parse_certificates(pem);
  if (!certs) return Error(certs.error());
  StorePtr store(X509_STORE_new());
  if (!store) return Error("out of memory");
  for (auto& cert : *certs) {
    if (X509_STORE_add_cert(store.get(), cert.get()) != 1) {
      const unsigned long code = ERR_peek_last_error();
      // The same CA twice in a bundle is harmless.
      if (ERR_GET_REASON(code) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        return Error("cannot add certificate to the trust store: " + take_openssl_error());
      }
      ERR_clear_error();
    }
  }
  return store;
}

Status check_key_matches(X509* cert, EVP_PKEY* key) {
  ERR_clear_error();
  if (X509_check_private_key(cert, key) != 1) {
    ERR_clear_error();
    return Error("private key does not match the certificate");
  }
  return {};
}

}  // namespace kproxy::k8s::tls
