// URLs the way berth's clients use them: absolute http:// and https:// URLs
// (registries, remote pipeline steps, `berth bench`), and references against
// them (Location headers).
#pragma once

#include <string>
#include <string_view>

#include "berth/status.h"

namespace berth {

struct Url {
  bool tls = false;          // https
  std::string host;          // a name, an IPv4 address, or an IPv6 address without its brackets
  std::string port;          // "80" or "443" when the URL names none
  std::string target = "/";  // path and query; "/" at least

  bool default_port() const { return port == (tls ? "443" : "80"); }
  // host[:port] as the Host header spells it (brackets around IPv6, no default port).
  std::string HostHeader() const;
  // scheme://host[:port]: connections are pooled per origin.
  std::string Origin() const;
  std::string ToString() const { return Origin() + target; }
};

// Parses an absolute http:// or https:// URL. InvalidArgument naming the
// URL and what is wrong: another scheme, no host, a port outside 1..65535,
// user information (credentials do not go in URLs), a fragment.
Result<Url> ParseUrl(std::string_view text);

// `reference` against `base`: an absolute URL, or an absolute path
// ("/v2/uploads/x?a=1") on base's origin.
Result<Url> ResolveUrl(const Url& base, std::string_view reference);

// Percent-encodes every byte but RFC 3986's unreserved characters
// (A-Z a-z 0-9 - . _ ~): safe in a path segment and in a query value.
std::string PercentEncode(std::string_view s);

}  // namespace berth
