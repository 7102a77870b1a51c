#include "probe_command.h"

#include <chrono>
#include <iostream>
#include <memory>

#include "net/http_client.h"
#include "net/url.h"

namespace berth {

Subcommand AddProbeCommand(CLI::App& parent) {
  struct Options {
    std::string url = "http://127.0.0.1:8000/v2/health/ready";
    int64_t timeout_ms = 2000;
  };
  auto o = std::make_shared<Options>();
  auto* app = parent.add_subcommand("probe", "GET a health URL: exit 0 on 200, 1 otherwise (container healthchecks)");
  app->add_option("url", o->url, "The URL")->capture_default_str();
  app->add_option("--timeout-ms", o->timeout_ms, "Connect and answer within this")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{600000}));
  return {app, [o]() {
            Result<Url> url = ParseUrl(o->url);
            if (!url.ok()) {
              std::cerr << "berth probe: " << url.status().message() << "\n";
              return 2;
            }
            HttpClientOptions options;
            options.connect_timeout = std::chrono::milliseconds(o->timeout_ms);
            options.request_timeout = std::chrono::milliseconds(o->timeout_ms);
            HttpClient client(options);
            HttpClientRequest request;
            request.url = *url;
            request.max_response_bytes = 64 << 10;
            Result<HttpClientResponse> answer = client.Send(std::move(request));
            if (!answer.ok()) {
              std::cerr << "berth probe: " << answer.status().message() << "\n";
              return 1;
            }
            if (answer->status != 200) {
              std::cerr << "berth probe: " << o->url << ": HTTP " << answer->status << "\n";
              return 1;
            }
            return 0;
          }};
}

}  // namespace berth
