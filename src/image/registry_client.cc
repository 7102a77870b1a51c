#include "image/registry_client.h"

#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "net/http_client.h"
#include "net/url.h"

namespace berth {
namespace http = boost::beast::http;

namespace {

using Response = HttpClientResponse;

// A request with either a string body or a file streamed as the body.
struct Request {
  http::verb method = http::verb::get;
  std::string target;
  std::map<std::string, std::string> headers;
  std::string body;
  std::string body_file;  // when set, the body is this file
};

// The registry's policy over the shared HTTP client.
class Client {
 public:
  Client(Url endpoint, bool insecure)
      : endpoint_(std::move(endpoint)), insecure_(insecure), http_(ClientOptions(insecure)) {}

  // Credentials go to the registry itself only, unless `credentials_for_host`
  // (a token request to the realm the registry named); nothing goes over
  // plain HTTP without --insecure-registry.
  Result<Response> Send(const Url& url, const Request& req, bool credentials_for_host = false) {
    bool registry_host = url.host == endpoint_.host && url.port == endpoint_.port;
    if (!url.tls && !insecure_) {
      return FailedPrecondition("refusing to send a request to http://" + url.host + ":" + url.port +
                                " without TLS (use --insecure-registry for a registry without TLS)");
    }
    HttpClientRequest out;
    out.method = req.method;
    out.url = url;
    out.headers = req.headers;
    if (!registry_host && !credentials_for_host) out.headers.erase("Authorization");
    out.body = req.body;
    out.body_file = req.body_file;
    Result<Response> r = http_.Send(out);
    // --insecure-registry: the registry itself, if it does not speak TLS, is asked again over plain HTTP.
    if (!r.ok() && insecure_ && url.tls && registry_host &&
        r.status().message().find("TLS handshake") != std::string::npos) {
      endpoint_.tls = false;
      out.url.tls = false;
      r = http_.Send(out);
    }
    if (!r.ok()) {
      std::string hint = r.status().message().find("TLS handshake") != std::string::npos && !insecure_
                             ? " (--insecure-registry for a registry without a trusted certificate)"
                             : "";
      return Status(StatusCode::kUnavailable, "registry " + r.status().message() + hint);
    }
    return r;
  }
  Url Endpoint(const std::string& target) const {
    Url u = endpoint_;
    u.target = target;
    return u;
  }

 private:
  static HttpClientOptions ClientOptions(bool insecure) {
    HttpClientOptions o;
    o.verify_tls = !insecure;
    o.connect_timeout = std::chrono::seconds(30);
    o.request_timeout = std::chrono::minutes(30);  // large blobs on slow links
    return o;
  }

  Url endpoint_;
  bool insecure_;
  HttpClient http_;
};

// "HTTP 404 Not Found: BLOB_UNKNOWN: blob unknown to registry" from the distribution API's error body.
std::string DescribeError(const Response& r) {
  std::string out = "HTTP " + std::to_string(r.status) + " " + r.reason;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array errors;
  if (!parser.parse(r.body).get(doc) && !doc["errors"].get(errors)) {
    for (auto e : errors) {
      std::string_view code, message;
      out += ": ";
      if (!e["code"].get(code)) out += std::string(code) + ": ";
      if (!e["message"].get(message)) out += std::string(message);
    }
  } else if (size_t end = r.body.find_last_not_of(" \r\n\t"); end != std::string::npos) {
    out += ": " + r.body.substr(0, std::min<size_t>(end + 1, 300));
  }
  return out;
}

// `Bearer realm="https://auth/token",service="registry",scope="..."` -> {realm:..., service:..., ...}
std::map<std::string, std::string> ParseChallenge(const std::string& header, std::string* scheme) {
  std::map<std::string, std::string> params;
  size_t sp = header.find(' ');
  *scheme = header.substr(0, sp);
  for (char& c : *scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string rest = sp == std::string::npos ? "" : header.substr(sp + 1);
  size_t i = 0;
  while (i < rest.size()) {
    size_t eq = rest.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = rest.substr(i, eq - i);
    key.erase(0, key.find_first_not_of(" ,"));
    std::string value;
    size_t j = eq + 1;
    if (j < rest.size() && rest[j] == '"') {
      size_t end = rest.find('"', j + 1);
      value = rest.substr(j + 1, end - j - 1);
      i = end == std::string::npos ? rest.size() : end + 1;
    } else {
      size_t end = rest.find(',', j);
      value = rest.substr(j, end - j);
      i = end == std::string::npos ? rest.size() : end;
    }
    params[key] = value;
  }
  return params;
}

}  // namespace

Result<PushResult> PushImage(const Image& image, const ImageReference& ref, const PushOptions& options) {
  ASSIGN_OR_RETURN(Url base, ParseUrl("https://" + ref.registry + "/"));
  Client client(base, options.insecure);
  std::string authorization;
  const std::string where = "registry " + ref.registry + ": ";

  // GET /v2/: is it a registry, and what authentication does it want?
  ASSIGN_OR_RETURN(Response ping, client.Send(client.Endpoint("/v2/"), Request{}));
  if (ping.status == 401) {
    std::string scheme;
    auto challenge = ParseChallenge(ping.header("www-authenticate"), &scheme);
    if (scheme == "basic") {
      if (options.credentials.empty())
        return FailedPrecondition(where + "asks for credentials, and none are configured");
      authorization = "Basic " + Base64Encode(options.credentials);
    } else if (scheme == "bearer" && !challenge["realm"].empty()) {
      std::string target = challenge["realm"];
      target += (target.find('?') == std::string::npos ? "?" : "&");
      target += "service=" + PercentEncode(challenge["service"]) +
                "&scope=" + PercentEncode("repository:" + ref.repository + ":pull,push");
      Request token_req;
      if (!options.credentials.empty())
        token_req.headers["Authorization"] = "Basic " + Base64Encode(options.credentials);
      ASSIGN_OR_RETURN(Url token_url, ResolveUrl(base, target));
      ASSIGN_OR_RETURN(Response token, client.Send(token_url, token_req, /*credentials_for_host=*/true));
      if (token.status != 200) return FailedPrecondition(where + "token request refused: " + DescribeError(token));
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      std::string_view value;
      if (parser.parse(token.body).get(doc) || (doc["token"].get(value) && doc["access_token"].get(value))) {
        return FailedPrecondition(where + "token answer without a token");
      }
      authorization = "Bearer " + std::string(value);
    } else {
      return FailedPrecondition(where + "unsupported authentication: " + ping.header("www-authenticate"));
    }
  } else if (ping.status != 200) {
    return FailedPrecondition(where + "GET /v2/: " + DescribeError(ping) + " (not an OCI distribution registry?)");
  }

  auto request = [&](http::verb method, const std::string& target) {
    Request r;
    r.method = method;
    r.target = target;
    if (!authorization.empty()) r.headers["Authorization"] = authorization;
    return r;
  };
  const std::string repo_path = "/v2/" + ref.repository;
  PushResult result;
  struct BlobToPush {
    std::string digest, file, content, what;
    uint64_t size;
  };
  std::vector<BlobToPush> blobs;
  for (const auto& l : image.layers) blobs.push_back({l.digest, l.path, "", "layer " + l.name, l.size});
  blobs.push_back({image.config_digest, "", image.config, "config", image.config.size()});
  for (const auto& b : blobs) {
    ASSIGN_OR_RETURN(Response head, client.Send(client.Endpoint(repo_path + "/blobs/" + b.digest),
                                                request(http::verb::head, repo_path + "/blobs/" + b.digest)));
    if (head.status == 200) {
      ++result.blobs_skipped;
      if (options.progress) std::fprintf(stderr, "%s: already in the registry\n", b.what.c_str());
      continue;
    }
    if (head.status != 404) return FailedPrecondition(where + "HEAD blob " + b.digest + ": " + DescribeError(head));
    ASSIGN_OR_RETURN(Response start, client.Send(client.Endpoint(repo_path + "/blobs/uploads/"),
                                                 request(http::verb::post, repo_path + "/blobs/uploads/")));
    if (start.status != 202 || start.header("location").empty()) {
      return FailedPrecondition(where + "starting the upload of " + b.what + ": " + DescribeError(start));
    }
    ASSIGN_OR_RETURN(Url upload, ResolveUrl(client.Endpoint("/"), start.header("location")));
    upload.target +=
        (upload.target.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + PercentEncode(b.digest);
    Request put = request(http::verb::put, upload.target);
    put.headers["Content-Type"] = "application/octet-stream";
    put.body = b.content;
    put.body_file = b.file;
    auto t0 = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(Response done, client.Send(upload, put));
    if (done.status != 201) return FailedPrecondition(where + "uploading " + b.what + ": " + DescribeError(done));
    ++result.blobs_uploaded;
    if (options.progress) {
      double s = std::max(1e-3, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      std::fprintf(stderr, "%s: uploaded %.1f MB, %.1f MB/s\n", b.what.c_str(), b.size / 1e6, b.size / s / 1e6);
    }
  }
  Request put = request(http::verb::put, repo_path + "/manifests/" + ref.tag);
  put.headers["Content-Type"] = kOciManifestType;
  put.body = image.manifest;
  ASSIGN_OR_RETURN(Response done, client.Send(client.Endpoint(put.target), put));
  if (done.status != 201 && done.status != 200) {
    return FailedPrecondition(where + "putting the manifest: " + DescribeError(done));
  }
  std::string digest = done.header("docker-content-digest");
  if (!digest.empty() && digest != image.manifest_digest) {
    return Internal(where + "stored the manifest as " + digest + ", expected " + image.manifest_digest);
  }
  result.manifest_digest = image.manifest_digest;
  return result;
}

}  // namespace berth
