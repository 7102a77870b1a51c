#include "net/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "common/file_util.h"

namespace berth {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites with forward secrecy and an AEAD cipher (Mozilla's
// "intermediate" list); TLS 1.3 uses OpenSSL's defaults, all AEAD.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

// The last OpenSSL error, for the operator's log.
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

Status FileProblem(const char* flag, const std::string& path, const std::string& why) {
  return InvalidArgument(std::string(flag) + " " + path + ": " + why);
}

// The file's text: a regular file of a sane size (a FIFO or /dev/zero must not hang or fill memory).
Result<std::string> ReadPem(const char* flag, const std::string& path) {
  Result<std::string> text = ReadRegularFile(path, 1 << 20);
  if (!text.ok()) return FileProblem(flag, path, text.status().message());
  if (text->empty()) return FileProblem(flag, path, "the file is empty");
  return text;
}

// Trusts the CAs of `pem` for client certificates and names them to clients (the CertificateRequest's list).
Status AddClientCas(SSL_CTX* native, const std::string& pem, const std::string& path) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return Internal("TLS: out of memory");
  X509_STORE* store = SSL_CTX_get_cert_store(native);
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    bool ok = X509_STORE_add_cert(store, cert) == 1 && SSL_CTX_add_client_CA(native, cert) == 1;
    X509_free(cert);
    if (!ok) {
      BIO_free(bio);
      return FileProblem("--tls-client-ca-file", path, "a certificate cannot be used (" + OpenSslError() + ")");
    }
    ++count;
  }
  BIO_free(bio);
  ERR_clear_error();  // the loop ends on "no start line"
  if (count == 0) return FileProblem("--tls-client-ca-file", path, "holds no PEM certificate");
  return Status::Ok();
}

}  // namespace

Status TlsFiles::Check() const {
  if (cert_file.empty() != key_file.empty()) {
    return InvalidArgument("--tls-cert-file and --tls-key-file go together: give both or neither");
  }
  if (!client_ca_file.empty() && cert_file.empty()) {
    return InvalidArgument("--tls-client-ca-file needs --tls-cert-file and --tls-key-file");
  }
  return Status::Ok();
}

Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const TlsFiles& files) {
  RETURN_IF_ERROR(files.Check());
  ASSIGN_OR_RETURN(std::string cert, ReadPem("--tls-cert-file", files.cert_file));
  ASSIGN_OR_RETURN(std::string key, ReadPem("--tls-key-file", files.key_file));
  std::string client_cas;
  if (!files.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(client_cas, ReadPem("--tls-client-ca-file", files.client_ca_file));
  }

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return Internal("TLS: cannot set the cipher list: " + OpenSslError());
  }
  ERR_clear_error();
  boost::system::error_code ec;
  // The key first: a certificate loaded after a key that does not match it
  // drops the key, which SSL_CTX_check_private_key then reports as a mismatch.
  ctx->use_private_key(boost::asio::buffer(key), ssl::context::pem, ec);
  if (ec) return FileProblem("--tls-key-file", files.key_file, "not a PEM private key (" + ec.message() + ")");
  ctx->use_certificate_chain(boost::asio::buffer(cert), ec);
  if (ec) return FileProblem("--tls-cert-file", files.cert_file, "not a PEM certificate (" + ec.message() + ")");
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return FileProblem("--tls-key-file", files.key_file, "the key does not match the certificate of --tls-cert-file");
  }
  if (!client_cas.empty()) {
    RETURN_IF_ERROR(AddClientCas(native, client_cas, files.client_ca_file));
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // Resumed sessions must be of this context (and so of its client CA).
    static constexpr unsigned char kSessionContext[] = "berth";
    SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  }
  return ctx;
}

Result<std::unique_ptr<ReloadableTlsContext>> ReloadableTlsContext::Create(const TlsFiles& files) {
  ASSIGN_OR_RETURN(std::shared_ptr<ssl::context> ctx, MakeServerTlsContext(files));
  return std::unique_ptr<ReloadableTlsContext>(new ReloadableTlsContext(files, std::move(ctx)));
}

std::shared_ptr<ssl::context> ReloadableTlsContext::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

Status ReloadableTlsContext::Reload() {
  ASSIGN_OR_RETURN(std::shared_ptr<ssl::context> ctx, MakeServerTlsContext(files_));
  std::lock_guard<std::mutex> lock(mu_);
  current_ = std::move(ctx);
  return Status::Ok();
}

}  // namespace berth
