#include "net/url.h"

#include <cctype>
#include <charconv>

namespace berth {

std::string Url::HostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return default_port() ? h : h + ":" + port;
}

std::string Url::Origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return (tls ? "https://" : "http://") + h + ":" + port;
}

Result<Url> ParseUrl(std::string_view text) {
  auto bad = [&](const std::string& why) { return InvalidArgument("URL '" + std::string(text) + "': " + why); };
  Url u;
  std::string_view rest;
  if (text.substr(0, 7) == "http://") {
    rest = text.substr(7);
  } else if (text.substr(0, 8) == "https://") {
    u.tls = true;
    rest = text.substr(8);
  } else {
    return bad(text.find("://") == std::string_view::npos ? "no scheme (expected http:// or https://)"
                                                          : "only http:// and https:// are supported");
  }
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view path = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (path.find('#') != std::string_view::npos) return bad("no fragment allowed");
  if (authority.find('@') != std::string_view::npos) return bad("no user information allowed");
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after[0] != ':') return bad("unexpected text after the IPv6 address");
    if (!after.empty()) port = after.substr(1);
    if (after == ":") return bad("port must be 1..65535");
  } else {
    size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return bad("port must be 1..65535");
    }
  }
  if (u.host.empty()) return bad("no host");
  if (port.empty()) {
    u.port = u.tls ? "443" : "80";
  } else {
    int p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p < 1 || p > 65535) {
      return bad("port must be 1..65535");
    }
    u.port = std::to_string(p);
  }
  if (path.empty() || path[0] == '?') {
    u.target = "/" + std::string(path);
  } else {
    u.target = std::string(path);
  }
  return u;
}

Result<Url> ResolveUrl(const Url& base, std::string_view reference) {
  if (reference.substr(0, 7) == "http://" || reference.substr(0, 8) == "https://") return ParseUrl(reference);
  if (reference.empty() || reference[0] != '/') {
    return InvalidArgument("URL reference '" + std::string(reference) + "': expected an absolute URL or path");
  }
  Url u = base;
  u.target = std::string(reference);
  return u;
}

std::string PercentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace berth
