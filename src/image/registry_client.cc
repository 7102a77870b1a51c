#include "image/registry_client.h"

#include <openssl/ssl.h>
#include <simdjson.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace berth {
namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

std::string Base64Encode(const std::string& in) {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out.push_back(kChars[(v >> s) & 63]);
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {kChars[(v >> 18) & 63], kChars[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kChars[(v >> 18) & 63], kChars[(v >> 12) & 63], kChars[(v >> 6) & 63], '='};
  }
  return out;
}

Result<std::string> Base64Decode(const std::string& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+' || c == '-')
      v = 62;
    else if (c == '/' || c == '_')
      v = 63;
    else if (c == '=' || c == '\n' || c == '\r')
      continue;
    else
      return InvalidArgument("not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

Result<ImageReference> ParseImageReference(const std::string& reference) {
  if (reference.empty()) return InvalidArgument("image name is empty");
  if (reference.find('@') != std::string::npos) return InvalidArgument(reference + ": give a tag, not a digest");
  ImageReference r;
  std::string rest = reference;
  size_t slash = rest.find('/');
  std::string first = rest.substr(0, slash);
  bool docker_hub = first == "docker.io" || first == "index.docker.io";
  if (slash != std::string::npos && !docker_hub &&
      (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost")) {
    r.registry = first;
    rest = rest.substr(slash + 1);
  } else {
    if (docker_hub && slash != std::string::npos) rest = rest.substr(slash + 1);
    r.registry = "registry-1.docker.io";
    if (rest.find('/') == std::string::npos) rest = "library/" + rest;
  }
  size_t colon = rest.rfind(':');
  if (colon != std::string::npos) {
    r.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  } else {
    r.tag = "latest";
  }
  r.repository = rest;
  auto valid = [](const std::string& s, const char* extra) {
    if (s.empty()) return false;
    for (char c : s) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && !std::strchr(extra, c)) return false;
    }
    return true;
  };
  if (!valid(r.repository, "._-/") || r.repository != [&] {
        std::string lower = r.repository;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return lower;
      }()) {
    return InvalidArgument(reference + ": the repository name must be lower-case letters, digits and . _ - /");
  }
  if (!valid(r.tag, "._-") || r.tag.size() > 128) {
    return InvalidArgument(reference + ": the tag must be letters, digits and . _ - (at most 128)");
  }
  r.auth_key = r.registry == "registry-1.docker.io" ? "https://index.docker.io/v1/" : r.registry;
  return r;
}

Result<std::string> RegistryCredentials(const ImageReference& ref) {
  std::vector<std::string> files;
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (!env("REGISTRY_AUTH_FILE").empty()) files.push_back(env("REGISTRY_AUTH_FILE"));
  if (!env("XDG_RUNTIME_DIR").empty()) files.push_back(env("XDG_RUNTIME_DIR") + "/containers/auth.json");
  if (!env("DOCKER_CONFIG").empty()) {
    files.push_back(env("DOCKER_CONFIG") + "/config.json");
  } else if (!env("HOME").empty()) {
    files.push_back(env("HOME") + "/.docker/config.json");
  }
  for (const auto& file : files) {
    std::error_code ec;
    if (!fs::exists(file, ec)) continue;
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return FailedPrecondition(file + ": cannot be read");
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(text.str()).get(doc)) return InvalidArgument(file + ": not valid JSON");
    simdjson::dom::object auths;
    if (doc["auths"].get(auths)) continue;
    for (const std::string& key : {ref.auth_key, ref.registry, "https://" + ref.registry, "http://" + ref.registry}) {
      simdjson::dom::element entry;
      if (auths[key].get(entry)) continue;
      std::string_view auth;
      if (!entry["auth"].get(auth)) {
        Result<std::string> decoded = Base64Decode(std::string(auth));
        if (!decoded.ok() || decoded->find(':') == std::string::npos) {
          return InvalidArgument(file + ": auths." + key + ".auth: expected base64 of user:password");
        }
        return *decoded;
      }
      std::string_view user, password;
      if (!entry["username"].get(user) && !entry["password"].get(password)) {
        return std::string(user) + ":" + std::string(password);
      }
    }
  }
  return std::string();
}

namespace {

struct Url {
  bool tls = true;
  std::string host;
  std::string port;
  std::string target;  // path and query
};

Url ParseUrl(const std::string& url, const Url& base) {
  Url u = base;
  std::string rest = url;
  if (rest.rfind("https://", 0) == 0 || rest.rfind("http://", 0) == 0) {
    u.tls = rest[4] == 's';
    rest = rest.substr(u.tls ? 8 : 7);
    size_t slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    rest = slash == std::string::npos ? "/" : rest.substr(slash);
    size_t colon = hostport.rfind(':');
    u.host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
    u.port = colon == std::string::npos ? (u.tls ? "443" : "80") : hostport.substr(colon + 1);
  }
  u.target = rest;
  return u;
}

struct Response {
  int status = 0;
  std::string reason;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// A request with either a string body or a file streamed as the body.
struct Request {
  http::verb method = http::verb::get;
  std::string target;
  std::map<std::string, std::string> headers;
  std::string body;
  std::string body_file;  // when set, the body is this file
};

class Client {
 public:
  Client(Url endpoint, bool insecure) : endpoint_(std::move(endpoint)), insecure_(insecure) {}

  // Credentials go to the registry itself only, unless `credentials_for_host`
  // (a token request to the realm the registry named); nothing goes over
  // plain HTTP without --insecure-registry.
  Result<Response> Send(const Url& url, const Request& req, bool credentials_for_host = false) {
    bool registry_host = url.host == endpoint_.host && url.port == endpoint_.port;
    if (!url.tls && !insecure_) {
      return FailedPrecondition("refusing to send a request to http://" + url.host + ":" + url.port +
                                " without TLS (use --insecure-registry for a registry without TLS)");
    }
    const Request* send = &req;
    Request stripped;
    if (!registry_host && !credentials_for_host && req.headers.count("Authorization")) {
      stripped = req;
      stripped.headers.erase("Authorization");
      send = &stripped;
    }
    Result<Response> r = SendOnce(url, *send, url.tls);
    // --insecure-registry: the registry itself, if it does not speak TLS, is asked again over plain HTTP.
    if (!r.ok() && insecure_ && url.tls && registry_host &&
        r.status().message().find("TLS handshake") != std::string::npos) {
      endpoint_.tls = false;
      return SendOnce(url, *send, false);
    }
    return r;
  }
  Url Endpoint(const std::string& target) const {
    Url u = endpoint_;
    u.target = target;
    return u;
  }

 private:
  template <class Stream>
  Result<Response> Exchange(Stream& stream, const Url& url, const Request& req) {
    beast::error_code ec;
    auto set_headers = [&](auto& r) {
      r.set(http::field::host, url.host + (url.port == "443" || url.port == "80" ? "" : ":" + url.port));
      r.set(http::field::user_agent, "berth");
      for (const auto& [k, v] : req.headers) r.set(k, v);
    };
    if (!req.body_file.empty()) {
      http::request<http::file_body> r{req.method, url.target, 11};
      set_headers(r);
      r.body().open(req.body_file.c_str(), beast::file_mode::scan, ec);
      if (ec) return FailedPrecondition(req.body_file + ": cannot be read: " + ec.message());
      r.prepare_payload();
      http::write(stream, r, ec);
    } else {
      http::request<http::string_body> r{req.method, url.target, 11};
      set_headers(r);
      r.body() = req.body;
      r.prepare_payload();
      http::write(stream, r, ec);
    }
    if (ec) return Unavailable(url.host + ":" + url.port + ": sending the request failed: " + ec.message());
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16u << 20);
    if (req.method == http::verb::head) parser.skip(true);
    http::read(stream, buffer, parser, ec);
    if (ec) return Unavailable(url.host + ":" + url.port + ": reading the answer failed: " + ec.message());
    Response out;
    const auto& msg = parser.get();
    out.status = static_cast<int>(msg.result_int());
    out.reason = std::string(msg.reason());
    out.body = msg.body();
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    return out;
  }

  Result<Response> SendOnce(const Url& url, const Request& req, bool tls) {
    net::io_context io;
    tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return Unavailable("registry " + url.host + ":" + url.port + ": cannot resolve: " + ec.message());
    beast::tcp_stream tcp_stream(io);
    tcp_stream.expires_after(std::chrono::seconds(30));
    tcp_stream.connect(endpoints, ec);
    if (ec) return Unavailable("registry " + url.host + ":" + url.port + ": cannot connect: " + ec.message());
    tcp_stream.expires_after(std::chrono::minutes(30));  // large blobs on slow links
    if (!tls) return Exchange(tcp_stream, url, req);
    ssl::context ctx(ssl::context::tls_client);
    if (insecure_) {
      ctx.set_verify_mode(ssl::verify_none);
    } else {
      ctx.set_default_verify_paths(ec);
      ctx.set_verify_mode(ssl::verify_peer);
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), ctx);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str())) {
      return Internal("TLS: cannot set the server name");
    }
    if (!insecure_) stream.set_verify_callback(ssl::host_name_verification(url.host));
    stream.handshake(ssl::stream_base::client, ec);
    if (ec) {
      return Unavailable("registry " + url.host + ":" + url.port + ": TLS handshake failed: " + ec.message() +
                         (insecure_ ? "" : " (--insecure-registry for a registry without a trusted certificate)"));
    }
    return Exchange(stream, url, req);
  }

  Url endpoint_;
  bool insecure_;
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

std::string UrlEncode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

Result<PushResult> PushImage(const Image& image, const ImageReference& ref, const PushOptions& options) {
  Url base;
  base.tls = true;
  size_t colon = ref.registry.rfind(':');
  base.host = colon == std::string::npos ? ref.registry : ref.registry.substr(0, colon);
  base.port = colon == std::string::npos ? "443" : ref.registry.substr(colon + 1);
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
      target += "service=" + UrlEncode(challenge["service"]) +
                "&scope=" + UrlEncode("repository:" + ref.repository + ":pull,push");
      Request token_req;
      if (!options.credentials.empty())
        token_req.headers["Authorization"] = "Basic " + Base64Encode(options.credentials);
      ASSIGN_OR_RETURN(Response token, client.Send(ParseUrl(target, base), token_req, /*credentials_for_host=*/true));
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
    Url upload = ParseUrl(start.header("location"), client.Endpoint("/"));
    upload.target +=
        (upload.target.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + UrlEncode(b.digest);
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
