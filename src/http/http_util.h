// Response details shared by kproxy's HTTP servers (health, metrics), as Go's net/http writes them.
#pragma once

#include <httplib.h>

#include <string>
#include <utility>

namespace kproxy::http {

// Every kube-proxy health handler sets Content-Type application/json and
// X-Content-Type-Options nosniff.
inline void set_json_body(httplib::Response& res, int status, std::string body) {
  res.status = status;
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(std::move(body), "application/json");
}

// Go's handlers answer every method; httplib routes per method (GET also answers HEAD).
template <typename Handler>
void route_all_methods(httplib::Server& server, const std::string& pattern, Handler handler) {
  server.Get(pattern, handler);
  server.Post(pattern, handler);
  server.Put(pattern, handler);
  server.Patch(pattern, handler);
  server.Delete(pattern, handler);
  server.Options(pattern, handler);
}

}  // namespace kproxy::http
