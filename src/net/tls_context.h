// Server-side TLS (OpenSSL) for every listener: the files given by
// --tls-cert-file, --tls-key-file and --tls-client-ca-file, checked once at
// startup and again on every reload. TLS 1.2 and 1.3 only, no compression,
// forward-secret AEAD ciphers for TLS 1.2 (TLS 1.3's own suites are all
// AEAD), and, with a client CA, a client certificate signed by it required.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <string>

#include "berth/status.h"

namespace berth {

struct TlsFiles {
  std::string cert_file;       // PEM: the server's certificate, then its chain
  std::string key_file;        // PEM: its private key (unencrypted)
  std::string client_ca_file;  // PEM: CAs whose client certificates are accepted; empty = no client certificates

  bool enabled() const { return !cert_file.empty(); }
  // InvalidArgument when only some of the flags are given.
  Status Check() const;
};

// A context for new connections. InvalidArgument naming the flag and the file
// (these are the operator's own paths, for the log) when a file cannot be
// read, is not PEM, or the key does not match the certificate.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(const TlsFiles& files);

// The context new connections use, replaced by Reload(). A connection keeps
// the context it started with, so a reload drops none of them.
class ReloadableTlsContext {
 public:
  static Result<std::unique_ptr<ReloadableTlsContext>> Create(const TlsFiles& files);

  std::shared_ptr<boost::asio::ssl::context> current() const;
  // Reads the files again. On error the current context stays and the error
  // says why.
  Status Reload();

 private:
  ReloadableTlsContext(TlsFiles files, std::shared_ptr<boost::asio::ssl::context> ctx)
      : files_(std::move(files)), current_(std::move(ctx)) {}

  const TlsFiles files_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_;
};

}  // namespace berth
