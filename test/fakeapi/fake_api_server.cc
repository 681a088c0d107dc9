#include "fakeapi/fake_api_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <limits>
#include <stdexcept>

#include <httplib.h>

#include "fakeapi/patch.h"
#include "fakeapi/selectors.h"

namespace kproxy::fakeapi {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string default_tls_dir() { return KPROXY_FAKEAPI_TLS_DIR; }

namespace {

constexpr std::size_t kEventsPerStep = 1000;
constexpr std::size_t kInitialPerStep = 500;
// How often an idle watch checks that its client is still connected.
constexpr std::chrono::milliseconds kIdleCheck{1000};
// The apiserver gzips only responses larger than this (apiserver/pkg/endpoints/handlers/
// responsewriters/writers.go, defaultGzipThresholdBytes) and never a watch stream.
constexpr std::size_t kGzipThreshold = 128 * 1024;

// ---- Status bodies (apimachinery/pkg/api/errors/errors.go) -------------------------------

json status_body(int code, const std::string& reason, const std::string& message, json details = nullptr) {
  json s = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Failure"},
            {"message", message}};
  if (!reason.empty()) s["reason"] = reason;
  if (!details.is_null()) s["details"] = std::move(details);
  s["code"] = code;
  return s;
}

void send_json(httplib::Response& res, int code, const std::string& body) {
  res.status = code;
  res.set_content(body, "application/json");
}

void send_status(httplib::Response& res, int code, const std::string& reason, const std::string& message,
                 json details = nullptr) {
  send_json(res, code, status_body(code, reason, message, std::move(details)).dump());
}

json not_found_details(const ResourceType& t, const std::string& name) {
  json d = {{"name", name}, {"kind", t.name}};
  if (!t.group.empty()) d["group"] = t.group;
  return d;
}

std::string not_found_message(const ResourceType& t, const std::string& name) {
  std::string gr = t.group.empty() ? t.name : t.name + "." + t.group;
  return gr + " \"" + name + "\" not found";
}

std::string conflict_message(const ResourceType& t, const std::string& name) {
  std::string gr = t.group.empty() ? t.name : t.name + "." + t.group;
  return "Operation cannot be fulfilled on " + gr + " \"" + name +
         "\": the object has been modified; please apply your changes to the latest version and try again";
}

// 422 for invalid ListOptions (apiserver/pkg/apis/meta/internalversion/validation).
void send_invalid_list_options(httplib::Response& res, const std::string& field, const std::string& detail) {
  json details = {{"group", "meta.k8s.io"},
                  {"kind", "ListOptions"},
                  {"causes", json::array({{{"reason", "FieldValueForbidden"},
                                           {"message", "Forbidden: " + detail},
                                           {"field", field}}})}};
  send_status(res, 422, "Invalid",
              "ListOptions.meta.k8s.io \"\" is invalid: " + field + ": Forbidden: " + detail, details);
}

json too_large_status(std::int64_t requested, std::int64_t current) {
  std::string msg = "Too large resource version: " + std::to_string(requested) + ", current: " + std::to_string(current);
  json details = {{"causes", json::array({{{"reason", "ResourceVersionTooLarge"}, {"message", "Too large resource version"}}})},
                  {"retryAfterSeconds", 1}};
  return status_body(504, "Timeout", msg, details);
}

json too_old_watch_status(std::int64_t requested, std::int64_t oldest) {
  return status_body(410, "Expired",
                     "too old resource version: " + std::to_string(requested) + " (" + std::to_string(oldest) + ")");
}

// ---- Serialisation ---------------------------------------------------------------------------

// The stored object (which has no kind/apiVersion) with kind and apiVersion first.
std::string dump_with_kind(const ResourceType& t, const json& object) {
  std::string head = "{\"apiVersion\":" + json(t.api_version()).dump() + ",\"kind\":" + json(t.kind).dump();
  std::string body = object.dump();
  if (body.size() <= 2) return head + "}";
  return head + "," + body.substr(1);
}

std::string event_line(const char* type, const ResourceType& t, const json& object) {
  return std::string("{\"type\":\"") + type + "\",\"object\":" + dump_with_kind(t, object) + "}\n";
}

std::string bookmark_line(const ResourceType& t, std::int64_t rv, bool initial_events_end) {
  json meta = {{"resourceVersion", std::to_string(rv)}};
  if (initial_events_end) meta["annotations"] = {{"k8s.io/initial-events-end", "true"}};
  return event_line("BOOKMARK", t, json{{"metadata", meta}});
}

// ---- Continue tokens: base64url(JSON), as apiserver/pkg/storage/continue.go --------------------

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_encode(const std::string& in) {
  std::string out;
  unsigned val = 0;
  int bits = -6;
  for (unsigned char c : in) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(kB64[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(kB64[((val << 8) >> (bits + 8)) & 0x3F]);
  return out;
}

std::optional<std::string> base64url_decode(const std::string& in) {
  std::string out;
  unsigned val = 0;
  int bits = -8;
  for (char c : in) {
    if (c == '=') break;
    const char* p = std::strchr(kB64, c);
    if (c == '+') p = kB64 + 62;  // tolerate the standard alphabet too
    if (c == '/') p = kB64 + 63;
    if (!p || c == '\0') return std::nullopt;
    val = (val << 6) + static_cast<unsigned>(p - kB64);
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

std::string encode_continue(std::int64_t rv, const std::string& start) {
  return base64url_encode(json{{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", start}}.dump());
}

struct ContinueToken {
  std::int64_t rv;
  std::string start;
};

std::optional<ContinueToken> decode_continue(const std::string& token) {
  auto raw = base64url_decode(token);
  if (!raw) return std::nullopt;
  json j = json::parse(*raw, nullptr, false);
  if (!j.is_object() || j.value("v", "") != "meta.k8s.io/v1" || !j.contains("rv") || !j["rv"].is_number_integer() ||
      !j.contains("start") || !j["start"].is_string()) {
    return std::nullopt;
  }
  return ContinueToken{j["rv"].get<std::int64_t>(), j["start"].get<std::string>()};
}

// ---- Small parsing helpers ---------------------------------------------------------------------

bool parse_rv(const std::string& s, std::int64_t& out) {
  if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  out = std::stoll(s);
  return true;
}

bool param_true(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return false;
  auto v = req.get_param_value(name);
  return v == "1" || v == "true" || v == "True";
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    auto j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// The apiserver serves JSON when the client accepts it (or anything); protobuf-only or
// other types get 406.
bool accepts_json(const httplib::Request& req) {
  if (!req.has_header("Accept")) return true;
  auto a = req.get_header_value("Accept");
  return a.empty() || a.find("json") != std::string::npos || a.find("*/*") != std::string::npos;
}

// kubectl asks for server-side printing with "as=Table" in Accept.
bool wants_table(const httplib::Request& req) {
  return req.get_header_value("Accept").find("as=Table") != std::string::npos;
}

// The apiserver compresses with gzip only (and only when the client accepts it); cpp-httplib
// would prefer brotli at its slowest setting, which takes a minute for a 17 MB list.
void gzip_only(const httplib::Request& req) {
  auto& headers = const_cast<httplib::Request&>(req).headers;
  auto it = headers.find("Accept-Encoding");
  if (it == headers.end()) return;
  bool gzip = it->second.find("gzip") != std::string::npos;
  headers.erase("Accept-Encoding");
  if (gzip) headers.emplace("Accept-Encoding", "gzip");
}

void no_compression(const httplib::Request& req) {
  // cpp-httplib compresses whenever the client accepts gzip; hide that from it, as the
  // apiserver neither compresses watches nor small responses.
  const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
}

struct Selectors {
  LabelSelector labels;
  FieldSelector fields;
  std::string ns;  // "" = all
  bool matches(const json& o) const {
    if (!ns.empty()) {
      auto m = o.find("metadata");
      if (m == o.end() || m->value("namespace", "") != ns) return false;
    }
    if (!labels.empty()) {
      auto m = o.find("metadata");
      static const json kNull;
      const json& l = (m != o.end() && m->contains("labels")) ? (*m)["labels"] : kNull;
      if (!labels.matches(l)) return false;
    }
    return fields.empty() || fields.matches(o);
  }
  bool empty() const { return labels.empty() && fields.empty(); }
};

// Parses labelSelector/fieldSelector; on error writes the 400 and returns nullopt.
std::optional<Selectors> parse_selectors(const httplib::Request& req, const ResourceType& t, const std::string& ns,
                                         httplib::Response& res) {
  Selectors s;
  s.ns = ns;
  auto l = LabelSelector::parse(req.get_param_value("labelSelector"));
  if (!l) {
    send_status(res, 400, "BadRequest", l.error());
    return std::nullopt;
  }
  s.labels = std::move(*l);
  auto f = FieldSelector::parse(req.get_param_value("fieldSelector"));
  if (!f) {
    send_status(res, 400, "BadRequest", f.error());
    return std::nullopt;
  }
  for (const auto& term : f->terms()) {
    bool ok = term.field == "metadata.name" || (t.namespaced && term.field == "metadata.namespace") ||
              std::find(t.extra_field_labels.begin(), t.extra_field_labels.end(), term.field) !=
                  t.extra_field_labels.end();
    if (!ok) {
      send_status(res, 400, "BadRequest", "field label not supported: " + term.field);
      return std::nullopt;
    }
  }
  s.fields = std::move(*f);
  return s;
}

// ---- Server-side printing (meta.k8s.io/v1 Table), enough for kubectl get ----------------------

json table_columns(const ResourceType& t) {
  auto col = [](const char* name, const char* type, const char* format, const char* desc, int priority = 0) {
    return json{{"name", name}, {"type", type}, {"format", format}, {"description", desc}, {"priority", priority}};
  };
  json cols = json::array({col("Name", "string", "name", "Name must be unique within a namespace.")});
  if (t.name == "services") {
    cols.push_back(col("Type", "string", "", "The type of the service."));
    cols.push_back(col("Cluster-IP", "string", "", "The cluster IP of the service."));
    cols.push_back(col("External-IP", "string", "", "The external IP of the service."));
    cols.push_back(col("Port(s)", "string", "", "The ports of the service."));
  } else if (t.name == "endpointslices") {
    cols.push_back(col("AddressType", "string", "", "The IP protocol family of the endpoint slice."));
    cols.push_back(col("Ports", "string", "", "Ports the endpoint slice exposes."));
    cols.push_back(col("Endpoints", "string", "", "The addresses of the endpoints."));
  } else if (t.name == "nodes") {
    cols.push_back(col("Status", "string", "", "The status of the node."));
  }
  cols.push_back(col("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created."));
  return cols;
}

// kubectl's AGE column, as the apiserver's printers render it (apimachinery/pkg/util/duration).
std::string age_of(const json& o) {
  std::string ts = o["metadata"].value("creationTimestamp", "");
  std::tm tm{};
  if (ts.empty() || !strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return "<unknown>";
  long long s = static_cast<long long>(std::time(nullptr) - timegm(&tm));
  if (s < 0) s = 0;
  long long m = s / 60, h = s / 3600, d = s / 86400;
  auto str = [](long long v, const char* unit) { return std::to_string(v) + unit; };
  if (s < 120) return str(s, "s");
  if (m < 10) return s % 60 == 0 ? str(m, "m") : str(m, "m") + str(s % 60, "s");
  if (m < 180) return str(m, "m");
  if (h < 8) return h * 60 == m ? str(h, "h") : str(h, "h") + str(m % 60, "m");
  if (h < 48) return str(h, "h");
  if (h < 24 * 8) return h % 24 == 0 ? str(d, "d") : str(d, "d") + str(h % 24, "h");
  if (h < 24 * 365 * 2) return str(d, "d");
  return str(d / 365, "y");
}

json table_cells(const ResourceType& t, const json& o) {
  json cells = json::array({o["metadata"].value("name", "")});
  const json& spec = o.contains("spec") ? o["spec"] : json::object();
  if (t.name == "services") {
    cells.push_back(spec.value("type", "ClusterIP"));
    cells.push_back(spec.value("clusterIP", "<none>"));
    std::string ext;
    if (spec.contains("externalIPs")) {
      for (const auto& ip : spec["externalIPs"]) ext += (ext.empty() ? "" : ",") + ip.get<std::string>();
    }
    cells.push_back(ext.empty() ? "<none>" : ext);
    std::string ports;
    if (spec.contains("ports")) {
      for (const auto& p : spec["ports"]) {
        std::string one = std::to_string(p.value("port", 0));
        if (p.contains("nodePort")) one += ":" + std::to_string(p.value("nodePort", 0));
        one += "/" + p.value("protocol", std::string("TCP"));
        ports += (ports.empty() ? "" : ",") + one;
      }
    }
    cells.push_back(ports.empty() ? "<none>" : ports);
  } else if (t.name == "endpointslices") {
    cells.push_back(o.value("addressType", ""));
    std::string ports, eps;
    if (o.contains("ports")) {
      for (const auto& p : o["ports"]) ports += (ports.empty() ? "" : ",") + std::to_string(p.value("port", 0));
    }
    if (o.contains("endpoints")) {
      for (const auto& e : o["endpoints"]) {
        if (e.contains("addresses") && !e["addresses"].empty()) {
          eps += (eps.empty() ? "" : ",") + e["addresses"][0].get<std::string>();
        }
      }
    }
    cells.push_back(ports.empty() ? "<unset>" : ports);
    cells.push_back(eps.empty() ? "<unset>" : eps);
  } else if (t.name == "nodes") {
    bool unsched = spec.value("unschedulable", false);
    cells.push_back(unsched ? "Ready,SchedulingDisabled" : "Ready");
  }
  cells.push_back(age_of(o));
  return cells;
}

json table_row(const ResourceType& t, const json& o) {
  // includeObject=Metadata (kubectl's default): a PartialObjectMetadata per row.
  json partial = {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", o["metadata"]}};
  return {{"cells", table_cells(t, o)}, {"object", partial}};
}

std::string table_json(const ResourceType& t, const std::vector<ObjectPtr>& items, const json& list_meta) {
  json table = {{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", list_meta},
                {"columnDefinitions", table_columns(t)}, {"rows", json::array()}};
  for (const auto& o : items) table["rows"].push_back(table_row(t, *o));
  return table.dump();
}

}  // namespace

// ---- Watchers ------------------------------------------------------------------------------------

struct FakeApiServer::Watcher {
  const ResourceType* type = nullptr;
  Selectors selectors;
  bool bookmarks = false;
  bool table = false;
  std::int64_t cursor = 0;  // every event with rv <= cursor has been considered
  std::vector<ObjectPtr> initial;
  std::size_t initial_pos = 0;
  bool initial_end_bookmark = false;
  std::int64_t initial_rv = 0;
  std::string error_line;  // an ERROR event to send, then end the stream
  std::deque<std::pair<std::int64_t, std::string>> raw;  // (inject after rv, bytes)
  std::uint64_t bookmark_generation = 0;
  bool dropped = false;
  Clock::time_point deadline;
  Clock::time_point next_periodic_bookmark = Clock::time_point::max();
};

struct FakeApiServer::ParsedPath {
  const ResourceType* type = nullptr;
  std::string ns;
  std::string name;
  std::string subresource;
  bool watch_path = false;  // deprecated /watch/ prefix
};

// ---- Lifecycle -------------------------------------------------------------------------------------

FakeApiServer::FakeApiServer(FakeApiServerOptions options)
    : options_(std::move(options)), tokens_(options_.tokens), expired_watch_mode_(options_.expired_watch_mode) {}

FakeApiServer::~FakeApiServer() { stop(); }

std::string FakeApiServer::url() const {
  return std::string(options_.tls ? "https://" : "http://") + options_.host + ":" + std::to_string(port_);
}

Status FakeApiServer::start() {
  if (server_) return Error("fake API server already started");
  std::signal(SIGPIPE, SIG_IGN);
  if (options_.tls) {
    std::string cert = options_.cert_file, key = options_.key_file, ca = options_.client_ca_file;
    auto ssl = std::make_unique<httplib::SSLServer>([cert, key, ca](SSL_CTX& ctx) {
      SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
      if (SSL_CTX_use_certificate_chain_file(&ctx, cert.c_str()) != 1) return false;
      if (SSL_CTX_use_PrivateKey_file(&ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) return false;
      if (SSL_CTX_check_private_key(&ctx) != 1) return false;
      static const unsigned char kSessionContext[] = "kproxy-fakeapi";
      SSL_CTX_set_session_id_context(&ctx, kSessionContext, sizeof kSessionContext - 1);
      if (!ca.empty()) {
        if (SSL_CTX_load_verify_locations(&ctx, ca.c_str(), nullptr) != 1) return false;
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str())) SSL_CTX_set_client_CA_list(&ctx, names);
        // Request a certificate but never fail the handshake: like the apiserver (Go's
        // tls.RequestClientCert), an unverifiable certificate just does not authenticate,
        // and the request is judged by its token (401 otherwise).
        SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
      }
      return true;
    });
    if (!ssl->is_valid()) {
      return Error("fake API server: cannot load TLS certificate " + cert + " / key " + key + " / CA " + ca);
    }
    server_ = std::move(ssl);
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  const int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  server_->set_keep_alive_timeout(options_.keep_alive_timeout.count());
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_max_count(100000);  // the apiserver does not cap requests per connection  // as Go's net/http; avoids Nagle/delayed-ACK stalls on small responses
  server_->set_default_headers({{"Cache-Control", "no-cache, private"}});
  auto h = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
  server_->Get(".*", h);
  server_->Post(".*", h);
  server_->Put(".*", h);
  server_->Patch(".*", h);
  server_->Delete(".*", h);

  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
    if (port_ < 0) port_ = 0;
  } else if (server_->bind_to_port(options_.host, options_.port)) {
    port_ = options_.port;
  }
  if (port_ <= 0) {
    server_.reset();
    return Error("fake API server: cannot bind " + options_.host + ":" + std::to_string(options_.port));
  }
  listen_thread_ = std::thread([this] { server_->listen_after_bind(); });
  // Server::stop() is a no-op until the accept loop runs, so wait for it (bounded).
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!server_->is_running() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!server_->is_running()) {
    stop();
    return Error("fake API server: accept loop did not start");
  }
  return {};
}

void FakeApiServer::stop() {
  if (!server_) return;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  server_->stop();
  if (listen_thread_.joinable()) listen_thread_.join();
  server_.reset();
}

// ---- State -------------------------------------------------------------------------------------------

std::int64_t FakeApiServer::oldest_watch_position_locked() const {
  std::int64_t oldest = std::numeric_limits<std::int64_t>::max();
  for (const auto& w : watchers_) oldest = std::min(oldest, w->cursor);
  return oldest;
}

void FakeApiServer::after_write_locked() {
  if (options_.history_limit > 0 && store_.event_count() > options_.history_limit) {
    std::vector<StoredEvent> evs;
    store_.events_after(store_.compacted_rv(), store_.event_count() - options_.history_limit, evs);
    if (!evs.empty()) store_.compact(evs.back().rv, oldest_watch_position_locked());
  }
  cv_.notify_all();
}

json FakeApiServer::upsert(std::string_view resource, json object) {
  const ResourceType* t = find_resource(resource);
  if (!t) throw std::invalid_argument("fake API server: unknown resource " + std::string(resource));
  std::lock_guard lk(mu_);
  ObjectPtr stored = store_.put(*t, std::move(object));
  after_write_locked();
  return json::parse(dump_with_kind(*t, *stored));
}

bool FakeApiServer::remove(std::string_view resource, std::string_view ns, std::string_view name) {
  const ResourceType* t = find_resource(resource);
  if (!t) return false;
  std::lock_guard lk(mu_);
  bool removed = store_.remove(*t, std::string(ns), std::string(name)) != nullptr;
  if (removed) after_write_locked();
  return removed;
}

std::optional<json> FakeApiServer::get(std::string_view resource, std::string_view ns, std::string_view name) const {
  const ResourceType* t = find_resource(resource);
  if (!t) return std::nullopt;
  std::lock_guard lk(mu_);
  ObjectPtr o = store_.get(*t, t->namespaced ? std::string(ns) : "", std::string(name));
  if (!o) return std::nullopt;
  return json::parse(dump_with_kind(*t, *o));
}

std::vector<json> FakeApiServer::list(std::string_view resource) const {
  std::vector<json> out;
  const ResourceType* t = find_resource(resource);
  if (!t) return out;
  std::lock_guard lk(mu_);
  store_.scan(*t, store_.current_rv(), "", "", [&](const std::string&, const ObjectPtr& o) {
    out.push_back(json::parse(dump_with_kind(*t, *o)));
    return true;
  });
  return out;
}

Status FakeApiServer::load(const std::vector<json>& objects) {
  for (const auto& o : objects) {
    std::string kind = o.value("kind", "");
    if (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "List") == 0 && o.contains("items")) {
      std::vector<json> items;
      std::string item_kind = kind.substr(0, kind.size() - 4);
      for (auto item : o["items"]) {
        if (!item.contains("kind")) item["kind"] = item_kind;
        items.push_back(std::move(item));
      }
      if (auto s = load(items); !s.ok()) return s;
      continue;
    }
    const ResourceType* type = nullptr;
    for (const auto& t : resource_types()) {
      if (t.kind == kind) type = &t;
    }
    if (!type) return Error("fake API server: cannot load object of kind \"" + kind + "\"");
    if (!o.contains("metadata") || o["metadata"].value("name", "").empty()) {
      return Error("fake API server: " + kind + " without metadata.name");
    }
    upsert(type->name, o);
  }
  return {};
}

std::int64_t FakeApiServer::resource_version() const {
  std::lock_guard lk(mu_);
  return store_.current_rv();
}

void FakeApiServer::set_tokens(std::set<std::string> tokens) {
  std::lock_guard lk(mu_);
  tokens_ = std::move(tokens);
}

// ---- Hooks --------------------------------------------------------------------------------------------

void FakeApiServer::compact() {
  std::lock_guard lk(mu_);
  store_.compact(store_.current_rv(), oldest_watch_position_locked());
}

void FakeApiServer::expire_continue_tokens() {
  std::lock_guard lk(mu_);
  continue_expired_before_ = store_.current_rv();
}

void FakeApiServer::set_expired_watch_mode(ExpiredWatchMode mode) {
  std::lock_guard lk(mu_);
  expired_watch_mode_ = mode;
}

void FakeApiServer::send_bookmark() {
  std::lock_guard lk(mu_);
  ++bookmark_generation_;
  cv_.notify_all();
}

void FakeApiServer::drop_watches() {
  std::lock_guard lk(mu_);
  for (auto& w : watchers_) w->dropped = true;
  cv_.notify_all();
}

void FakeApiServer::inject_raw(std::string bytes) {
  std::lock_guard lk(mu_);
  for (auto& w : watchers_) w->raw.emplace_back(store_.current_rv(), bytes);
  cv_.notify_all();
}

void FakeApiServer::fail_next_requests(int count, int status, int retry_after_seconds, std::string path_contains) {
  std::lock_guard lk(mu_);
  failures_.push_back({count, status, retry_after_seconds, std::move(path_contains)});
}

void FakeApiServer::conflict_next_patches(int count) {
  std::lock_guard lk(mu_);
  conflict_patches_ += count;
}

std::size_t FakeApiServer::open_watches() const {
  std::lock_guard lk(mu_);
  return watchers_.size();
}

bool FakeApiServer::wait_for_watches(std::size_t count, std::chrono::milliseconds timeout,
                                     std::string_view resource) const {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] {
    std::size_t n = 0;
    for (const auto& w : watchers_) {
      if (!w->dropped && (resource.empty() || w->type->name == resource)) ++n;
    }
    return n >= count;
  });
}

bool FakeApiServer::wait_for_no_watches(std::chrono::milliseconds timeout) const {
  std::unique_lock lk(mu_);
  return cv_.wait_for(lk, timeout, [&] { return watchers_.empty(); });
}

std::uint64_t FakeApiServer::request_count() const {
  std::lock_guard lk(mu_);
  return request_count_;
}

std::vector<RecordedRequest> FakeApiServer::requests() const {
  std::lock_guard lk(mu_);
  return request_log_;
}

std::optional<RecordedRequest> FakeApiServer::wait_for_request(
    const std::function<bool(const RecordedRequest&)>& predicate, std::chrono::milliseconds timeout) const {
  std::unique_lock lk(mu_);
  std::optional<RecordedRequest> found;
  cv_.wait_for(lk, timeout, [&] {
    for (const auto& r : request_log_) {
      if (predicate(r)) {
        found = r;
        return true;
      }
    }
    return false;
  });
  return found;
}

void FakeApiServer::clear_requests() {
  std::lock_guard lk(mu_);
  request_log_.clear();
}

Status FakeApiServer::write_kubeconfig(const std::string& path, bool use_client_cert) const {
  json user = json::object();
  if (use_client_cert) {
    user["client-certificate"] = default_tls_dir() + "/client.crt";
    user["client-key"] = default_tls_dir() + "/client.key";
  } else {
    std::lock_guard lk(mu_);
    if (!tokens_.empty()) user["token"] = *tokens_.begin();
  }
  json cluster = {{"server", url()}};
  if (options_.tls) cluster["certificate-authority"] = default_tls_dir() + "/ca.crt";
  // JSON is YAML, and kubeconfig loaders accept it.
  json config = {{"apiVersion", "v1"},
                 {"kind", "Config"},
                 {"clusters", json::array({{{"name", "fake"}, {"cluster", cluster}}})},
                 {"users", json::array({{{"name", "fake"}, {"user", user}}})},
                 {"contexts", json::array({{{"name", "fake"},
                                            {"context", {{"cluster", "fake"}, {"user", "fake"}, {"namespace", "default"}}}}})},
                 {"current-context", "fake"},
                 {"preferences", json::object()}};
  std::ofstream f(path);
  f << config.dump(2) << "\n";
  f.close();
  if (!f) return Error("cannot write kubeconfig " + path);
  return {};
}

// ---- Request handling ----------------------------------------------------------------------------------

bool FakeApiServer::authenticate(const httplib::Request& req) const {
  if (!options_.require_auth) return true;
  // x509 is tried before tokens in the apiserver's union authenticator, so a verified client
  // certificate authenticates whatever the Authorization header says.
  if (req.ssl) {
    X509* peer = SSL_get1_peer_certificate(req.ssl);
    bool verified = peer != nullptr && SSL_get_verify_result(req.ssl) == X509_V_OK;
    if (peer) X509_free(peer);
    if (verified) return true;
  }
  auto auth = req.get_header_value("Authorization");
  if (auth.size() > 7 && (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0)) {
    std::lock_guard lk(mu_);
    return tokens_.count(auth.substr(7)) > 0;
  }
  return false;
}

void FakeApiServer::handle(const httplib::Request& req, httplib::Response& res) {
  RecordedRequest rec;
  rec.method = req.method;
  rec.target = req.target;
  rec.path = req.path;
  rec.watch = param_true(req, "watch") || req.path.find("/watch/") != std::string::npos;
  rec.user_agent = req.get_header_value("User-Agent");
  rec.authorization = req.get_header_value("Authorization");
  rec.accept = req.get_header_value("Accept");
  rec.content_type = req.get_header_value("Content-Type");
  rec.body = req.body.size() <= 64 * 1024 ? req.body : req.body.substr(0, 64 * 1024);
  res.set_header("Audit-Id", "00000000-0000-4000-a000-000000000000");

  auto record = [&] {
    rec.status = res.status;
    if (options_.log_requests) {
      std::fprintf(stderr, "fakeapi: %s %s %d%s\n", rec.method.c_str(), rec.target.c_str(), rec.status,
                   rec.watch && rec.status == 200 ? " (watch)" : "");
    }
    std::lock_guard lk(mu_);
    request_log_.push_back(std::move(rec));
    if (request_log_.size() > options_.request_log_size) {
      request_log_.erase(request_log_.begin(),
                         request_log_.begin() + static_cast<std::ptrdiff_t>(request_log_.size() - options_.request_log_size));
    }
    cv_.notify_all();
  };

  {
    std::lock_guard lk(mu_);
    ++request_count_;
  }
  gzip_only(req);
  if (!authenticate(req)) {
    send_json(res, 401,
              R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})");
    return record();
  }
  {
    std::unique_lock lk(mu_);
    for (auto it = failures_.begin(); it != failures_.end(); ++it) {
      if (it->path_contains.empty() || req.path.find(it->path_contains) != std::string::npos) {
        FailureRule rule = *it;
        if (--it->remaining <= 0) failures_.erase(it);
        lk.unlock();
        std::string reason = "InternalError", message = "Internal error occurred: injected by the fake API server";
        json details = {{"retryAfterSeconds", rule.retry_after}};
        if (rule.status == 429) {
          reason = "TooManyRequests";
          message = "Too many requests, please try again later.";
        } else if (rule.status == 503) {
          reason = "ServiceUnavailable";
          message = "The server is currently unable to handle the request";
        } else if (rule.status == 504) {
          reason = "Timeout";
          message = "The server was unable to return a response in the time allotted, but may still be processing the request";
        } else if (rule.status == 403) {
          reason = "Forbidden";
          message = "forbidden: injected by the fake API server";
        }
        send_status(res, rule.status, reason, message, details);
        res.set_header("Retry-After", std::to_string(rule.retry_after));
        return record();
      }
    }
  }

  const std::string& path = req.path;
  if (path == "/version" || path == "/healthz" || path == "/livez" || path == "/readyz" || path == "/api" ||
      path == "/apis" || path.rfind("/openapi", 0) == 0) {
    serve_discovery(path, res);
    return record();
  }
  auto segs = split_path(path);
  std::size_t rest = 0;
  std::string group, version;
  if (segs.size() >= 2 && segs[0] == "api") {
    version = segs[1];
    rest = 2;
  } else if (segs.size() >= 2 && segs[0] == "apis") {
    group = segs[1];
    if (segs.size() == 2) {
      serve_discovery(path, res);
      return record();
    }
    version = segs[2];
    rest = 3;
  } else {
    res.status = 404;
    res.set_content("404 page not found\n", "text/plain; charset=utf-8");
    return record();
  }
  if (segs.size() == rest) {
    serve_discovery(path, res);
    return record();
  }
  ParsedPath p;
  std::vector<std::string> r(segs.begin() + static_cast<std::ptrdiff_t>(rest), segs.end());
  if (!r.empty() && r[0] == "watch") {
    p.watch_path = true;
    rec.watch = true;
    r.erase(r.begin());
  }
  std::string resource;
  if (r.size() >= 3 && r[0] == "namespaces") {
    p.ns = r[1];
    resource = r[2];
    if (r.size() >= 4) p.name = r[3];
    if (r.size() >= 5) p.subresource = r[4];
    if (r.size() >= 6) resource.clear();
  } else if (!r.empty()) {
    resource = r[0];
    if (r.size() >= 2) p.name = r[1];
    if (r.size() >= 3) p.subresource = r[2];
    if (r.size() >= 4) resource.clear();
  }
  p.type = find_resource(group, version, resource);
  if (!p.type || (!p.type->namespaced && !p.ns.empty()) || !p.subresource.empty()) {
    res.status = 404;
    res.set_content("404 page not found\n", "text/plain; charset=utf-8");
    return record();
  }
  if (!accepts_json(req)) {
    send_status(res, 406, "NotAcceptable", "only the following media types are accepted: application/json, application/yaml");
    return record();
  }
  serve_resource(req, res, p);
  record();
}

void FakeApiServer::serve_discovery(const std::string& path, httplib::Response& res) {
  if (path == "/healthz" || path == "/livez" || path == "/readyz") {
    res.status = 200;
    res.set_content("ok", "text/plain; charset=utf-8");
    return;
  }
  if (path == "/version") {
    std::string v = options_.git_version;  // "v1.32.4"
    auto dot1 = v.find('.'), dot2 = v.find('.', dot1 + 1);
    json version = {{"major", v.substr(1, dot1 - 1)},
                    {"minor", v.substr(dot1 + 1, dot2 - dot1 - 1)},
                    {"gitVersion", v},
                    {"gitCommit", "0000000000000000000000000000000000000000"},
                    {"gitTreeState", "clean"},
                    {"buildDate", "2025-01-01T00:00:00Z"},
                    {"goVersion", "go1.23.6"},
                    {"compiler", "gc"},
                    {"platform", "linux/amd64"}};
    send_json(res, 200, version.dump());
    return;
  }
  // Legacy (unaggregated) discovery only: answering plain application/json to the
  // aggregated-discovery Accept header makes clients fall back to these documents.
  std::string address = options_.host + ":" + std::to_string(port_);
  if (path == "/api") {
    send_json(res, 200,
              json{{"kind", "APIVersions"},
                   {"versions", {"v1"}},
                   {"serverAddressByClientCIDRs", json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", address}}})}}
                  .dump());
    return;
  }
  auto group_json = [](const std::string& g) {
    json gv = {{"groupVersion", g + "/v1"}, {"version", "v1"}};
    return json{{"name", g}, {"versions", json::array({gv})}, {"preferredVersion", gv}};
  };
  std::vector<std::string> groups;
  for (const auto& t : resource_types()) {
    if (!t.group.empty() && std::find(groups.begin(), groups.end(), t.group) == groups.end()) groups.push_back(t.group);
  }
  if (path == "/apis") {
    json list = {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", json::array()}};
    for (const auto& g : groups) list["groups"].push_back(group_json(g));
    send_json(res, 200, list.dump());
    return;
  }
  for (const auto& g : groups) {
    if (path == "/apis/" + g) {
      json doc = group_json(g);
      doc["kind"] = "APIGroup";
      doc["apiVersion"] = "v1";
      send_json(res, 200, doc.dump());
      return;
    }
  }
  for (const auto& gv : std::vector<std::pair<std::string, std::string>>{{"", "v1"}, {"discovery.k8s.io", "v1"},
                                                                         {"networking.k8s.io", "v1"}}) {
    std::string prefix = gv.first.empty() ? "/api/v1" : "/apis/" + gv.first + "/" + gv.second;
    if (path != prefix) continue;
    json list = {{"kind", "APIResourceList"},
                 {"apiVersion", "v1"},
                 {"groupVersion", gv.first.empty() ? gv.second : gv.first + "/" + gv.second},
                 {"resources", json::array()}};
    for (const auto& t : resource_types()) {
      if (t.group != gv.first || t.version != gv.second) continue;
      json r = {{"name", t.name},
                {"singularName", t.singular},
                {"namespaced", t.namespaced},
                {"kind", t.kind},
                {"verbs", {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}},
                {"storageVersionHash", "fakeapi0"}};
      if (!t.short_names.empty()) r["shortNames"] = t.short_names;
      if (t.name == "services") r["categories"] = {"all"};
      list["resources"].push_back(r);
    }
    send_json(res, 200, list.dump());
    return;
  }
  // /openapi/v2 and /openapi/v3 are not modelled; kubectl get/watch/taint work without them.
  res.status = 404;
  res.set_content("404 page not found\n", "text/plain; charset=utf-8");
}

void FakeApiServer::serve_resource(const httplib::Request& req, httplib::Response& res, const ParsedPath& p) {
  const std::string& m = req.method;
  if (m == "GET") {
    bool watch = p.watch_path || param_true(req, "watch");
    if (watch) return serve_watch(req, res, p);
    if (p.name.empty()) return serve_list(req, res, p);
    return serve_get(req, res, p);
  }
  if (m == "PATCH" && !p.name.empty()) return serve_patch(req, res, p);
  if ((m == "POST" && p.name.empty()) || (m == "PUT" && !p.name.empty())) return serve_create_or_update(req, res, p);
  if (m == "DELETE" && !p.name.empty()) return serve_delete(req, res, p);
  send_status(res, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
}

void FakeApiServer::serve_get(const httplib::Request& req, httplib::Response& res, const ParsedPath& p) {
  ObjectPtr o;
  {
    std::lock_guard lk(mu_);
    o = store_.get(*p.type, p.ns, p.name);
  }
  if (!o) {
    return send_status(res, 404, "NotFound", not_found_message(*p.type, p.name), not_found_details(*p.type, p.name));
  }
  no_compression(req);
  if (wants_table(req)) {
    json meta = {{"resourceVersion", (*o)["metadata"].value("resourceVersion", "")}};
    return send_json(res, 200, table_json(*p.type, {o}, meta));
  }
  send_json(res, 200, dump_with_kind(*p.type, *o));
}

void FakeApiServer::serve_list(const httplib::Request& req, httplib::Response& res, const ParsedPath& p) {
  const ResourceType& t = *p.type;
  auto sel = parse_selectors(req, t, p.ns, res);
  if (!sel) return;
  std::string rv_param = req.get_param_value("resourceVersion");
  std::string match = req.get_param_value("resourceVersionMatch");
  std::string cont = req.get_param_value("continue");
  std::int64_t limit = 0;
  if (req.has_param("limit")) {
    try {
      limit = std::stoll(req.get_param_value("limit"));
    } catch (...) {
      return send_status(res, 400, "BadRequest", "invalid limit");
    }
  }
  if (req.has_param("sendInitialEvents")) {
    return send_invalid_list_options(res, "sendInitialEvents", "sendInitialEvents is forbidden for list");
  }
  if (!match.empty()) {
    if (rv_param.empty()) {
      return send_invalid_list_options(res, "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided");
    }
    if (!cont.empty()) {
      return send_invalid_list_options(res, "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided");
    }
    if (match != "Exact" && match != "NotOlderThan") {
      return send_status(res, 422, "Invalid",
                         "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"" + match +
                             "\": supported values: \"Exact\", \"NotOlderThan\", \"\"");
    }
    if (match == "Exact" && rv_param == "0") {
      return send_invalid_list_options(res, "resourceVersionMatch", "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
    }
  }
  std::int64_t requested_rv = 0;
  if (!rv_param.empty() && !parse_rv(rv_param, requested_rv)) {
    return send_status(res, 400, "BadRequest", "invalid resource version: " + rv_param);
  }

  std::vector<ObjectPtr> items;
  std::string next_continue;
  std::int64_t remaining = 0;
  std::int64_t snapshot = 0;
  {
    std::unique_lock lk(mu_);
    std::string start;
    bool paginate = limit > 0;
    if (!cont.empty()) {
      // The pager clears resourceVersion on continuation pages; the storage layer rejects
      // anything but "" or "0" (apiserver/pkg/storage/etcd3/store.go, ValidateListOptions).
      if (!rv_param.empty() && rv_param != "0") {
        return send_status(res, 400, "BadRequest", "specifying resource version is not allowed when using continue");
      }
      auto tok = decode_continue(cont);
      if (!tok) return send_status(res, 400, "BadRequest", "invalid continue token: continue key is not valid");
      std::string prefix = (t.namespaced && !p.ns.empty()) ? p.ns + "/" : "";
      if (tok->start.compare(0, prefix.size(), prefix) != 0) {
        return send_status(res, 400, "BadRequest", "invalid continue token: continue key is not valid");
      }
      if (tok->rv == 0) return send_status(res, 400, "BadRequest", "0 continue resource version is not allowed when using continue");
      if (tok->rv > 0 && (tok->rv < store_.compacted_rv() || tok->rv <= continue_expired_before_)) {
        // 410 with a token that continues from the latest revision (etcd3/store.go, handleCompactedErrorForPaging).
        json status = status_body(
            410, "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new "
            "list without the continue parameter, or use the continue token in this response to retrieve the "
            "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
            "that were created, modified, or deleted between the time the first chunk was returned and now may show "
            "up in the list.");
        status["metadata"]["continue"] = encode_continue(-1, tok->start);
        return send_json(res, 410, status.dump());
      }
      snapshot = tok->rv > 0 ? tok->rv : store_.current_rv();
      start = tok->start;
    } else {
      bool exact = match == "Exact" || (match.empty() && limit > 0 && !rv_param.empty() && rv_param != "0");
      if (!rv_param.empty() && rv_param != "0" && requested_rv > store_.current_rv()) {
        // The watch cache waits a little for a future revision, then gives up with 504.
        cv_.wait_for(lk, options_.too_large_rv_wait, [&] { return stopping_ || store_.current_rv() >= requested_rv; });
        if (store_.current_rv() < requested_rv) {
          res.set_header("Retry-After", "1");
          return send_json(res, 504, too_large_status(requested_rv, store_.current_rv()).dump());
        }
      }
      if (exact) {
        if (requested_rv < store_.compacted_rv()) {
          return send_status(res, 410, "Expired", "The resourceVersion for the provided list is too old.");
        }
        snapshot = requested_rv;
      } else {
        snapshot = store_.current_rv();
        // resourceVersion=0 is served by the watch cache, which ignores limit.
        if (rv_param == "0" && !options_.paginate_rv0) paginate = false;
      }
    }
    std::string last_key;
    bool more = false;
    store_.scan(t, snapshot, p.ns, start, [&](const std::string& key, const ObjectPtr& o) {
      if (paginate && static_cast<std::int64_t>(items.size()) >= limit) {
        more = true;
        ++remaining;
        return sel->empty();  // counting the rest is only done (and reported) without selectors
      }
      if (sel->matches(*o)) {
        items.push_back(o);
        last_key = key;
      }
      return true;
    });
    if (more) next_continue = encode_continue(snapshot, last_key + std::string(1, '\0'));
    if (!more || !sel->empty()) remaining = -1;
  }

  json meta = {{"resourceVersion", std::to_string(snapshot)}};
  if (!next_continue.empty()) meta["continue"] = next_continue;
  if (remaining >= 0) meta["remainingItemCount"] = remaining;

  std::string body;
  if (wants_table(req)) {
    body = table_json(t, items, meta);
  } else {
    body = "{\"kind\":" + json(t.list_kind()).dump() + ",\"apiVersion\":" + json(t.api_version()).dump() +
           ",\"metadata\":" + meta.dump() + ",\"items\":[";
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i) body += ',';
      body += items[i]->dump();  // list items carry no kind/apiVersion
    }
    body += "]}";
  }
  if (body.size() < kGzipThreshold) no_compression(req);
  send_json(res, 200, body);
}

void FakeApiServer::serve_watch(const httplib::Request& req, httplib::Response& res, const ParsedPath& p) {
  const ResourceType& t = *p.type;
  auto w = std::make_shared<Watcher>();
  w->type = &t;
  std::string ns = p.ns;
  auto sel = parse_selectors(req, t, ns, res);
  if (!sel) return;
  w->selectors = std::move(*sel);
  if (!p.name.empty()) {
    // A watch on a single object's path is a watch with fieldSelector metadata.name=<name>.
    std::string combined = req.get_param_value("fieldSelector");
    combined = (combined.empty() ? "" : combined + ",") + "metadata.name=" + p.name;
    auto f = FieldSelector::parse(combined);
    if (!f) return send_status(res, 400, "BadRequest", f.error());
    w->selectors.fields = std::move(*f);
  }
  w->bookmarks = param_true(req, "allowWatchBookmarks");
  w->table = wants_table(req);

  std::string rv_param = req.get_param_value("resourceVersion");
  std::string match = req.get_param_value("resourceVersionMatch");
  bool has_sie = req.has_param("sendInitialEvents");
  bool sie = param_true(req, "sendInitialEvents");
  if (has_sie && match != "NotOlderThan") {
    return send_invalid_list_options(res, "resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan");
  }
  if (!match.empty() && !has_sie) {
    return send_invalid_list_options(res, "resourceVersionMatch", "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided");
  }
  if (!match.empty() && match != "NotOlderThan") {
    return send_status(res, 422, "Invalid",
                       "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"" + match +
                           "\": supported values: \"NotOlderThan\"");
  }
  std::int64_t requested_rv = 0;
  if (!rv_param.empty() && !parse_rv(rv_param, requested_rv)) {
    return send_status(res, 400, "BadRequest", "invalid resource version: " + rv_param);
  }
  std::int64_t timeout_s = 0;
  if (req.has_param("timeoutSeconds")) {
    try {
      timeout_s = std::stoll(req.get_param_value("timeoutSeconds"));
    } catch (...) {
      timeout_s = 0;
    }
  }
  auto timeout = timeout_s > 0 ? std::chrono::seconds(timeout_s) : options_.default_watch_timeout;
  w->deadline = Clock::now() + timeout;
  if (options_.bookmark_interval.count() > 0 && w->bookmarks) {
    w->next_periodic_bookmark = Clock::now() + options_.bookmark_interval;
  }

  {
    std::unique_lock lk(mu_);
    w->bookmark_generation = bookmark_generation_;
    // Initial events: RV unset or "0" (legacy: sendInitialEvents defaults to true), or
    // sendInitialEvents=true (watch-list).
    bool initial = has_sie ? sie : (rv_param.empty() || rv_param == "0");
    if (requested_rv > store_.current_rv()) {
      cv_.wait_for(lk, options_.too_large_rv_wait, [&] { return stopping_ || store_.current_rv() >= requested_rv; });
    }
    if (requested_rv > store_.current_rv()) {
      json st = too_large_status(requested_rv, store_.current_rv());
      if (expired_watch_mode_ == ExpiredWatchMode::kHttpStatus) {
        res.set_header("Retry-After", "1");
        return send_json(res, 504, st.dump());
      }
      w->error_line = "{\"type\":\"ERROR\",\"object\":" + st.dump() + "}\n";
    } else if (!initial && requested_rv != 0 && requested_rv < store_.compacted_rv()) {
      json st = too_old_watch_status(requested_rv, store_.compacted_rv());
      if (expired_watch_mode_ == ExpiredWatchMode::kHttpStatus) return send_json(res, 410, st.dump());
      w->error_line = "{\"type\":\"ERROR\",\"object\":" + st.dump() + "}\n";
    } else if (initial) {
      w->initial_rv = store_.current_rv();
      store_.scan(t, w->initial_rv, ns, "", [&](const std::string&, const ObjectPtr& o) {
        if (w->selectors.matches(*o)) w->initial.push_back(o);
        return true;
      });
      w->cursor = w->initial_rv;
      w->initial_end_bookmark = has_sie && sie && w->bookmarks;
    } else {
      w->cursor = requested_rv == 0 ? store_.current_rv() : requested_rv;
    }
    if (w->error_line.empty()) watchers_.push_back(w);
    cv_.notify_all();
  }

  no_compression(req);
  res.status = 200;
  res.set_chunked_content_provider(
      "application/json",
      [this, w](std::size_t, httplib::DataSink& sink) {
        std::string out;
        bool finished = false;
        if (!watch_step(w, out, finished)) return false;
        // An idle tick: notice a client that went away instead of holding a worker thread
        // until the next event or the timeout.
        if (out.empty() && !finished) return sink.is_writable();
        if (!out.empty() && !sink.write(out.data(), out.size())) return false;
        if (finished) sink.done();
        return true;
      },
      [this, w](bool) {
        std::lock_guard lk(mu_);
        watchers_.remove(w);
        cv_.notify_all();
      });
}

// One step of a watch stream: waits (at most kIdleCheck) for something to send, then renders
// it into `out` (outside the lock; stored objects are immutable). Returns false to end the
// stream abruptly (drop_watches, stop); sets `finished` for a clean end (timeout, ERROR event).
bool FakeApiServer::watch_step(const std::shared_ptr<Watcher>& w, std::string& out, bool& finished) {
  const ResourceType& t = *w->type;
  const auto idle_until = Clock::now() + kIdleCheck;
  for (;;) {
    std::vector<ObjectPtr> initial;
    std::vector<StoredEvent> events;
    std::vector<std::string> raw;
    std::int64_t bookmark_rv = -1;
    bool initial_end = false;
    {
      std::unique_lock lk(mu_);
      for (;;) {
        if (stopping_ || w->dropped) return false;
        if (!w->error_line.empty()) {
          out = std::move(w->error_line);
          finished = true;
          return true;
        }
        auto now = Clock::now();
        if (w->initial_pos < w->initial.size()) {
          auto n = std::min(kInitialPerStep, w->initial.size() - w->initial_pos);
          auto first = w->initial.begin() + static_cast<std::ptrdiff_t>(w->initial_pos);
          initial.assign(first, first + static_cast<std::ptrdiff_t>(n));
          w->initial_pos += n;
          if (w->initial_pos == w->initial.size()) {
            w->initial.clear();
            w->initial.shrink_to_fit();
            w->initial_pos = 0;
          }
          break;
        }
        if (w->initial_end_bookmark) {
          w->initial_end_bookmark = false;
          initial_end = true;
          bookmark_rv = w->initial_rv;
          break;
        }
        // Events up to the next raw injection point keep raw bytes in order with events.
        std::int64_t limit_rv = store_.current_rv();
        if (!w->raw.empty()) limit_rv = std::min(limit_rv, w->raw.front().first);
        if (w->cursor < limit_rv) {
          std::vector<StoredEvent> evs;
          store_.events_after(w->cursor, kEventsPerStep, evs);
          bool reaches_limit = evs.size() < kEventsPerStep || evs.back().rv > limit_rv;
          for (auto& e : evs) {
            if (e.rv > limit_rv) break;
            w->cursor = e.rv;
            if (e.resource == &t) events.push_back(std::move(e));
          }
          if (reaches_limit) w->cursor = limit_rv;
          if (!events.empty()) break;
          continue;
        }
        while (!w->raw.empty() && w->raw.front().first <= w->cursor) {
          raw.push_back(std::move(w->raw.front().second));
          w->raw.pop_front();
        }
        if (!raw.empty()) break;
        if (w->bookmarks && w->cursor >= store_.current_rv() &&
            (w->bookmark_generation < bookmark_generation_ || now >= w->next_periodic_bookmark)) {
          w->bookmark_generation = bookmark_generation_;
          if (options_.bookmark_interval.count() > 0) w->next_periodic_bookmark = now + options_.bookmark_interval;
          bookmark_rv = w->cursor;
          break;
        }
        if (now >= w->deadline) {
          finished = true;
          return true;
        }
        if (now >= idle_until) return true;  // nothing to send: let the caller check the connection
        cv_.wait_until(lk, std::min({w->deadline, w->next_periodic_bookmark, idle_until}));
      }
    }

    for (const auto& o : initial) out += event_line("ADDED", t, *o);
    for (const auto& e : events) {
      bool cur = e.type != EventType::kDeleted && w->selectors.matches(*e.object);
      bool old = e.prev_object && w->selectors.matches(*e.prev_object);
      if (cur && !old) {
        out += event_line("ADDED", t, *e.object);
      } else if (cur && old) {
        out += event_line("MODIFIED", t, *e.object);
      } else if (!cur && old) {
        if (e.type == EventType::kDeleted) {
          out += event_line("DELETED", t, *e.object);
        } else {
          // Left the selector: DELETED with the previous state at this event's RV (cacher.go).
          json prev = *e.prev_object;
          prev["metadata"]["resourceVersion"] = std::to_string(e.rv);
          out += event_line("DELETED", t, prev);
        }
      }
    }
    for (auto& r : raw) out += r;
    if (bookmark_rv >= 0) out += bookmark_line(t, bookmark_rv, initial_end);
    if (w->table && !out.empty()) {
      // Server-side printing of watch events: each object becomes a one-row Table.
      std::string converted;
      std::size_t pos = 0;
      while (pos < out.size()) {
        auto nl = out.find('\n', pos);
        std::string line = out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? out.size() : nl + 1;
        json ev = json::parse(line, nullptr, false);
        if (ev.is_discarded() || !ev.is_object() || ev.value("type", "") == "ERROR" || ev.value("type", "") == "BOOKMARK") {
          converted += line + "\n";
          continue;
        }
        json obj = ev["object"];
        json meta = {{"resourceVersion", obj["metadata"].value("resourceVersion", "")}};
        ev["object"] = json::parse(table_json(t, {std::make_shared<const json>(obj)}, meta));
        converted += ev.dump() + "\n";
      }
      out = std::move(converted);
    }
    if (!out.empty()) return true;
  }
}

void FakeApiServer::serve_patch(const httplib::Request& req, httplib::Response& res, const ParsedPath& p) {
  const ResourceType& t = *p.type;
  auto type = patch_type_from_content_type(req.get_header_value("Content-Type"));
  if (!type) {
    return send_status(res, 415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: "
                       "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json");
  }
  bool dry_run = req.has_param("dryRun");
  ObjectPtr stored;
  {
    std::lock_guard lk(mu_);
    ObjectPtr cur = store_.get(t, p.ns, p.name);
    if (!cur) return send_status(res, 404, "NotFound", not_found_message(t, p.name), not_found_details(t, p.name));
    if (conflict_patches_ > 0) {
      --conflict_patches_;
      // Someone else wrote the object first: a real change of resourceVersion, then 409.
      store_.put(t, *cur);
      after_write_locked();
      return send_status(res, 409, "Conflict", conflict_message(t, p.name), not_found_details(t, p.name));
    }
    PatchResult r = apply_patch(t, *type, *cur, req.body);
    if (!r.ok) {
      return send_status(res, r.code, r.code == 400 ? "BadRequest" : "Invalid", r.message);
    }
    json& patched = r.object;
    patched.erase("kind");
    patched.erase("apiVersion");
    if (!patched.contains("metadata") || !patched["metadata"].is_object()) patched["metadata"] = json::object();
    auto& pm = patched["metadata"];
    const auto& cm = (*cur)["metadata"];
    if (pm.value("name", "") != p.name) {
      return send_status(res, 400, "BadRequest", "the name of the object (" + pm.value("name", "") +
                                                     ") does not match the name on the URL (" + p.name + ")");
    }
    // metadata.resourceVersion / uid left in the patched object are preconditions
    // (GuaranteedUpdate compares them with the stored object).
    std::string want_rv = pm.value("resourceVersion", "");
    if ((!want_rv.empty() && want_rv != cm.value("resourceVersion", "")) ||
        (pm.contains("uid") && pm["uid"] != cm["uid"])) {
      return send_status(res, 409, "Conflict", conflict_message(t, p.name), not_found_details(t, p.name));
    }
    pm["resourceVersion"] = cm.value("resourceVersion", "");
    pm["uid"] = cm["uid"];
    if (t.namespaced) pm["namespace"] = p.ns;
    if (patched == *cur || dry_run) {
      stored = patched == *cur ? cur : std::make_shared<const json>(patched);  // no-op: no write, no event
    } else {
      stored = store_.put(t, std::move(patched));
      after_write_locked();
    }
  }
  send_json(res, 200, dump_with_kind(t, *stored));
}

void FakeApiServer::serve_create_or_update(const httplib::Request& req, httplib::Response& res, const ParsedPath& p) {
  const ResourceType& t = *p.type;
  std::string content_type = req.get_header_value("Content-Type");
  if (!content_type.empty() && content_type.find("json") == std::string::npos) {
    // Protobuf (kubectl create's default for built-in types) is not modelled.
    return send_status(res, 415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: application/json");
  }
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return send_status(res, 400, "BadRequest", "the object provided is unrecognized (must be of type " + t.kind + ")");
  }
  if (!body.contains("metadata") || !body["metadata"].is_object()) body["metadata"] = json::object();
  auto& meta = body["metadata"];
  std::string name = meta.value("name", "");
  if (name.empty()) return send_status(res, 422, "Invalid", t.kind + " \"\" is invalid: metadata.name: Required value: name or generateName is required");
  if (req.method == "PUT" && name != p.name) {
    return send_status(res, 400, "BadRequest", "the name of the object (" + name + ") does not match the name on the URL (" + p.name + ")");
  }
  if (t.namespaced) {
    std::string ns = p.ns.empty() ? meta.value("namespace", std::string("default")) : p.ns;
    if (meta.contains("namespace") && meta["namespace"] != ns) {
      return send_status(res, 400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
    }
    meta["namespace"] = ns;
  }
  ObjectPtr stored;
  int code = 200;
  {
    std::lock_guard lk(mu_);
    ObjectPtr cur = store_.get(t, t.namespaced ? meta["namespace"].get<std::string>() : "", name);
    if (req.method == "POST") {
      if (cur) {
        std::string gr = t.group.empty() ? t.name : t.name + "." + t.group;
        return send_status(res, 409, "AlreadyExists", gr + " \"" + name + "\" already exists", not_found_details(t, name));
      }
      meta.erase("resourceVersion");
      code = 201;
    } else {
      if (!cur) return send_status(res, 404, "NotFound", not_found_message(t, name), not_found_details(t, name));
      std::string want = meta.value("resourceVersion", "");
      if (!want.empty() && want != (*cur)["metadata"].value("resourceVersion", "")) {
        return send_status(res, 409, "Conflict", conflict_message(t, name), not_found_details(t, name));
      }
    }
    stored = store_.put(t, std::move(body));
    after_write_locked();
  }
  send_json(res, code, dump_with_kind(t, *stored));
}

void FakeApiServer::serve_delete(const httplib::Request& req, httplib::Response& res, const ParsedPath& p) {
  const ResourceType& t = *p.type;
  json opts = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
  ObjectPtr deleted;
  {
    std::lock_guard lk(mu_);
    ObjectPtr cur = store_.get(t, p.ns, p.name);
    if (!cur) return send_status(res, 404, "NotFound", not_found_message(t, p.name), not_found_details(t, p.name));
    if (opts.is_object() && opts.contains("preconditions") && opts["preconditions"].is_object()) {
      const auto& pre = opts["preconditions"];
      const auto& cm = (*cur)["metadata"];
      if ((pre.contains("resourceVersion") && pre["resourceVersion"] != cm["resourceVersion"]) ||
          (pre.contains("uid") && pre["uid"] != cm["uid"])) {
        return send_status(res, 409, "Conflict", conflict_message(t, p.name), not_found_details(t, p.name));
      }
    }
    deleted = store_.remove(t, p.ns, p.name);
    after_write_locked();
  }
  json ok = {{"kind", "Status"},
             {"apiVersion", "v1"},
             {"metadata", json::object()},
             {"status", "Success"},
             {"details", {{"name", p.name}, {"kind", t.name}, {"uid", (*deleted)["metadata"].value("uid", "")}}}};
  if (!t.group.empty()) ok["details"]["group"] = t.group;
  send_json(res, 200, ok.dump());
}

}  // namespace kproxy::fakeapi
