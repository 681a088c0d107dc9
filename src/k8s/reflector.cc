#include "kproxy/k8s/reflector.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <thread>
#include <random>

#include "kproxy/k8s/list_stream.h"
#include "kproxy/log.h"

namespace kproxy::k8s {
namespace {

bool too_large_rv(const ApiStatus& s) {
  return s.code == 504 && s.message.find("Too large resource version") != std::string::npos;
}

// Hands list items to worker threads that parse them and feed the sink, so that receiving
// and splitting the body (the reader) overlaps parsing and validating it (the workers).
// Items travel in batches: a wake-up per item cost more than the parse it handed over. A
// bounded queue keeps memory flat; the first error stops the list.
class ItemPipeline {
 public:
  ItemPipeline(ReflectorSink& sink, int workers) : sink_(sink) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~ItemPipeline() { (void)finish(); }

  Status push(std::string_view text) {
    if (threads_.empty()) return deliver(text);
    batch_.emplace_back(text);
    if (batch_.size() < kBatch) return {};
    return flush();
  }

  // Waits for every queued item; the first error of any worker.
  Status finish() {
    if (!batch_.empty()) (void)flush();
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    not_empty_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  static constexpr std::size_t kBatch = 64;
  static constexpr std::size_t kCapacity = 8;  // batches

  Status flush() {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [this] { return queue_.size() < kCapacity || !error_.ok(); });
    if (!error_.ok()) return error_;
    queue_.push_back(std::move(batch_));
    batch_.clear();
    lock.unlock();
    not_empty_.notify_one();
    return {};
  }

  Status deliver(std::string_view text) {
    // Parsed with this thread's reused simdjson parser: no tree is built and freed per item.
    auto item = model::JsonValue::parse(text);
    if (!item) return Error("an item is not valid JSON");
    sink_.list_item(*item);
    return {};
  }

  void work() {
    for (;;) {
      std::vector<std::string> batch;
      {
        std::unique_lock lock(mu_);
        not_empty_.wait(lock, [this] { return !queue_.empty() || closed_; });
        if (queue_.empty()) return;
        batch = std::move(queue_.front());
        queue_.pop_front();
        if (!error_.ok()) continue;  // drain without work after a failure
      }
      not_full_.notify_one();
      for (const auto& text : batch) {
        Status s = deliver(text);
        if (!s.ok()) {
          std::lock_guard lock(mu_);
          if (error_.ok()) error_ = s;
          not_full_.notify_all();
          break;
        }
      }
    }
  }

  ReflectorSink& sink_;
  std::vector<std::string> batch_;  // the reader's batch being filled
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::vector<std::string>> queue_;
  bool closed_ = false;
  Status error_;
  std::vector<std::thread> threads_;
};

}  // namespace

int default_list_workers() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cores - 1, 1, 3);
}

std::string object_key(const nlohmann::json& object) {
  if (!object.is_object()) return {};
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  auto name = meta->find("name");
  if (name == meta->end() || !name->is_string() || name->get_ref<const std::string&>().empty()) return {};
  auto ns = meta->find("namespace");
  if (ns != meta->end() && ns->is_string() && !ns->get_ref<const std::string&>().empty()) {
    return ns->get<std::string>() + "/" + name->get<std::string>();
  }
  return name->get<std::string>();
}

std::string object_key(const model::JsonValue& object) {
  const model::JsonValue meta = object.member("metadata");
  auto name = meta.member("name").string();
  if (!name || name->empty()) return {};
  auto ns = meta.member("namespace").string();
  if (ns && !ns->empty()) return std::string(*ns) + "/" + std::string(*name);
  return std::string(*name);
}

std::string object_resource_version(const model::JsonValue& object) {
  return std::string(object.member("metadata").member("resourceVersion").string().value_or(""));
}

std::string object_resource_version(const nlohmann::json& object) {
  if (!object.is_object()) return {};
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  auto rv = meta->find("resourceVersion");
  if (rv == meta->end() || !rv->is_string()) return {};
  return rv->get<std::string>();
}

std::string url_encode(std::string_view value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Reflector::Reflector(std::unique_ptr<ApiClient> client, ResourceSpec spec, ReflectorSink& sink,
                     ReflectorOptions options)
    : client_(std::move(client)), spec_(std::move(spec)), sink_(sink), options_(std::move(options)),
      backoff_(options_.backoff) {
  if (!options_.random01) {
    auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
    options_.random01 = [rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(*rng); };
  }
}

std::string Reflector::last_resource_version() const {
  std::lock_guard lock(rv_mu_);
  return last_rv_;
}

void Reflector::set_rv(std::string rv) {
  std::lock_guard lock(rv_mu_);
  last_rv_ = std::move(rv);
}

std::string Reflector::query(std::initializer_list<std::pair<const char*, std::string>> params) const {
  std::string q = spec_.path;
  char sep = '?';
  auto add = [&](const std::string& k, const std::string& v) {
    q += sep;
    q += k;
    q += '=';
    q += url_encode(v);
    sep = '&';
  };
  for (const auto& [k, v] : params) {
    if (!v.empty()) add(k, v);
  }
  if (!spec_.label_selector.empty()) add("labelSelector", spec_.label_selector);
  if (!spec_.field_selector.empty()) add("fieldSelector", spec_.field_selector);
  return q;
}

void Reflector::sleep_for(std::stop_token stop, std::chrono::milliseconds d) {
  if (d <= std::chrono::milliseconds::zero()) return;
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_for(lock, stop, d, [] { return false; });
}

std::chrono::milliseconds Reflector::backoff_delay(std::chrono::milliseconds at_least) {
  auto d = backoff_.next(Backoff::Clock::now(), options_.random01());
  return std::max(d, at_least);
}

Status Reflector::list(std::stop_token stop, ListRv mode) {
  ++stats_.lists;
  std::string list_rv;
  std::string cont;
  const std::string limit = std::to_string(options_.page_size);
  for (int page = 0;; ++page) {
    if (stop.stop_requested()) return Error("stopped");
    std::string path;
    if (!cont.empty()) {
      // Continuation pages carry no resourceVersion (the server rejects it; client-go's
      // pager clears it).
      path = query({{"limit", limit}, {"continue", cont}});
    } else if (mode == ListRv::kInitial) {
      path = query({{"limit", limit}, {"resourceVersion", "0"}});
    } else if (mode == ListRv::kLast) {
      // Served from the watch cache, unpaginated, not older than what we have seen.
      path = query({{"resourceVersion", last_resource_version()}, {"resourceVersionMatch", "NotOlderThan"}});
    } else {
      path = query({{"limit", limit}});
    }

    // The body is scanned as it arrives: each item is parsed and handed to the sink at
    // once (by the workers), so neither the list's text nor its JSON tree is ever held whole.
    if (page == 0) sink_.begin_list();
    ListStreamParser parser(options_.max_event_bytes);
    ItemPipeline pipeline(sink_, options_.list_workers);
    Status scan;
    auto on_item = [&](std::string_view text) { return pipeline.push(text); };
    auto on_data = [&](std::string_view chunk) {
      stats_.bytes_received += chunk.size();
      scan = parser.feed(chunk, on_item);
      return scan.ok() && !stop.stop_requested();
    };
    auto end = client_->stream(path, on_data, options_.list_idle_timeout);
    if (Status s = pipeline.finish(); !s.ok() && scan.ok()) scan = s;
    if (!end) return Error(spec_.kind + " list failed: " + end.error());
    if (end->cancelled || stop.stop_requested()) return Error("stopped");
    ++stats_.list_pages;
    if (end->status != 200) {
      ApiStatus s = parse_api_status_text(end->error_body, end->status);
      if (!cont.empty() && is_expired(s)) {
        // An expired continue token: the pages seen so far belong to a snapshot that is
        // gone. Start again from the first page as a consistent read.
        if (log::v(2)) {
          spdlog::info("{} list: continue token expired after {} pages; restarting the list", spec_.kind, page);
        }
        cont.clear();
        mode = ListRv::kConsistent;
        page = -1;
        continue;
      }
      if (mode != ListRv::kConsistent && (is_expired(s) || too_large_rv(s))) {
        // The RV we asked for is unavailable: retry at once as a consistent read.
        mode = ListRv::kConsistent;
        page = -1;
        continue;
      }
      return Error(spec_.kind + " list: HTTP " + std::to_string(end->status) + " " + s.reason + ": " + s.message);
    }
    if (!scan.ok()) return Error(spec_.kind + " list: " + scan.message());
    auto envelope = parser.finish();
    if (!envelope) return Error(spec_.kind + " list: " + envelope.error());
    auto meta = envelope->find("metadata");
    if (meta != envelope->end() && meta->is_object()) {
      if (page == 0) {
        auto rv = meta->find("resourceVersion");
        if (rv != meta->end() && rv->is_string()) list_rv = rv->get<std::string>();
      }
      auto c = meta->find("continue");
      cont = (c != meta->end() && c->is_string()) ? c->get<std::string>() : std::string();
    } else {
      cont.clear();
    }
    if (cont.empty()) break;
  }
  if (list_rv.empty()) return Error(spec_.kind + " list: response has no metadata.resourceVersion");
  sink_.end_list(list_rv);
  set_rv(list_rv);
  if (log::v(2)) spdlog::info("{} list complete at resourceVersion {}", spec_.kind, list_rv);
  return {};
}

Reflector::WatchEnd Reflector::watch(std::stop_token stop, std::chrono::milliseconds& retry_after) {
  ++stats_.watches;
  const auto timeout = options_.min_watch_timeout +
                       std::chrono::seconds(static_cast<long long>(
                           static_cast<double>(options_.min_watch_timeout.count()) * options_.random01()));
  const std::string path = query({{"watch", "1"},
                                  {"resourceVersion", last_resource_version()},
                                  {"allowWatchBookmarks", "true"},
                                  {"timeoutSeconds", std::to_string(timeout.count())}});
  WatchDecoder decoder(options_.max_event_bytes);
  Status stream_error;
  bool expired = false;
  std::uint64_t events = 0;
  const auto started = std::chrono::steady_clock::now();

  auto on_line = [&](std::string_view line) -> Status {
    auto ev = parse_watch_event(line);
    if (!ev) return Error(ev.error());
    if (ev->type == WatchEventType::kError) {
      ApiStatus s = parse_api_status(ev->object);
      if (is_expired(s)) {
        expired = true;
        return Error("watch expired: " + s.message);
      }
      return Error("watch ERROR event: " + std::to_string(s.code) + " " + s.reason + ": " + s.message);
    }
    std::string rv = object_resource_version(ev->object);
    ++events;
    ++stats_.events;
    if (ev->type != WatchEventType::kBookmark) sink_.apply(ev->type, ev->object);
    if (!rv.empty()) set_rv(std::move(rv));
    return {};
  };
  auto on_data = [&](std::string_view chunk) {
    stats_.bytes_received += chunk.size();
    stream_error = decoder.feed(chunk, on_line);
    return stream_error.ok() && !stop.stop_requested();
  };

  // The server ends the stream after timeoutSeconds; a connection silent well past that is dead.
  auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(timeout + std::chrono::seconds(30));
  auto end = client_->stream(path, on_data, idle);
  if (stop.stop_requested()) return WatchEnd::kClean;
  if (!end) {
    ++stats_.failures;
    spdlog::warn("{} watch failed: {}; re-watching from resourceVersion {} after a backoff", spec_.kind, end.error(),
                 last_resource_version());
    return WatchEnd::kRetrySameRv;
  }
  if (end->status != 200) {
    ++stats_.failures;
    ApiStatus s = parse_api_status_text(end->error_body, end->status);
    if (is_expired(s)) {
      if (log::v(2)) spdlog::info("{} watch: resourceVersion expired (HTTP 410); relisting", spec_.kind);
      return WatchEnd::kExpired;
    }
    if (auto ra = k8s::retry_after(end->headers)) retry_after = std::min<std::chrono::milliseconds>(*ra, std::chrono::minutes(10));
    spdlog::warn("{} watch: HTTP {} {}: {}; retrying after a backoff", spec_.kind, end->status, s.reason, s.message);
    return end->status == 429 ? WatchEnd::kRetrySameRv : WatchEnd::kRelist;
  }
  if (expired) {
    if (log::v(2)) spdlog::info("{} watch: resourceVersion expired; relisting", spec_.kind);
    return WatchEnd::kExpired;
  }
  if (!stream_error.ok()) {
    ++stats_.failures;
    spdlog::warn("{} watch ended: {}; relisting after a backoff", spec_.kind, stream_error.message());
    return WatchEnd::kRelist;
  }
  if (events == 0 && std::chrono::steady_clock::now() - started < options_.short_watch) {
    ++stats_.failures;
    spdlog::warn("{} watch ended immediately without events; retrying after a backoff", spec_.kind);
    return WatchEnd::kRetrySameRv;
  }
  if (log::v(4)) spdlog::info("{} watch ended normally after {} events; re-watching", spec_.kind, events);
  return WatchEnd::kClean;
}

void Reflector::run(std::stop_token stop) {
  std::stop_callback cancel(stop, [this] { client_->cancel(); });
  bool need_list = true;
  ListRv list_mode = ListRv::kInitial;
  while (!stop.stop_requested()) {
    if (need_list) {
      Status s = list(stop, list_mode);
      if (stop.stop_requested()) return;
      if (!s.ok()) {
        ++stats_.failures;
        auto d = backoff_delay();
        spdlog::warn("{}; keeping the last known state, retrying in {} ms", s.message(), d.count());
        sleep_for(stop, d);
        continue;
      }
      need_list = false;
    }
    std::chrono::milliseconds retry_after{};
    switch (watch(stop, retry_after)) {
      case WatchEnd::kClean:
        break;
      case WatchEnd::kExpired:
        // client-go relists at the last RV (not older than), after a backoff.
        need_list = true;
        list_mode = ListRv::kLast;
        sleep_for(stop, backoff_delay());
        break;
      case WatchEnd::kRetrySameRv:
        sleep_for(stop, backoff_delay(retry_after));
        break;
      case WatchEnd::kRelist:
        need_list = true;
        list_mode = ListRv::kLast;
        sleep_for(stop, backoff_delay(retry_after));
        break;
    }
  }
}

}  // namespace kproxy::k8s
