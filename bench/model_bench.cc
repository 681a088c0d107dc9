// JSON -> model: the cost per object of the text path (simdjson + validation, what the
// informers run) against nlohmann's parse alone and nlohmann's tree + validation (the path
// before simdjson).
#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>

#include "kproxy/model/parse.h"

namespace {

nlohmann::json slice(int endpoints) {
  nlohmann::json eps = nlohmann::json::array();
  for (int i = 0; i < endpoints; ++i) {
    eps.push_back({{"addresses", {"10.244." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1)}},
                   {"conditions", {{"ready", true}, {"serving", true}, {"terminating", false}}},
                   {"nodeName", "node-" + std::to_string(i % 50)},
                   {"zone", "zone-a"}});
  }
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", "web-abcde"},
            {"namespace", "default"},
            {"resourceVersion", "12345"},
            {"labels", {{"kubernetes.io/service-name", "web"}}}}},
          {"addressType", "IPv4"},
          {"ports", {{{"name", "http"}, {"protocol", "TCP"}, {"port", 8080}}}},
          {"endpoints", eps}};
}

void BM_ParseJsonOnly(benchmark::State& state) {
  const std::string text = slice(static_cast<int>(state.range(0))).dump();
  for (auto _ : state) benchmark::DoNotOptimize(nlohmann::json::parse(text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_ParseJsonOnly)->Arg(10)->Arg(100);

void BM_ParseTreeAndModel(benchmark::State& state) {
  const std::string text = slice(static_cast<int>(state.range(0))).dump();
  for (auto _ : state) benchmark::DoNotOptimize(kproxy::model::parse_endpoint_slice(nlohmann::json::parse(text)));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_ParseTreeAndModel)->Arg(10)->Arg(100);

void BM_ParseJsonAndModel(benchmark::State& state) {
  const std::string text = slice(static_cast<int>(state.range(0))).dump();
  for (auto _ : state) benchmark::DoNotOptimize(kproxy::model::parse_endpoint_slice_json(text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_ParseJsonAndModel)->Arg(10)->Arg(100);

}  // namespace
