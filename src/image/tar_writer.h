// Deterministic tar (POSIX ustar, with a pax extended header only for a
// name, link or size that ustar cannot hold) and gzip (zlib, fixed header)
// streams with their sha256 digests: the building blocks of image layers and
// image archives.
#pragma once

#include <openssl/evp.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "berth/status.h"

namespace berth {

// An OpenSSL message digest (sha256 by default), hex-encoded at the end.
class Hasher {
 public:
  explicit Hasher(const EVP_MD* md = EVP_sha256());
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void Update(const void* data, size_t n);
  std::string HexDigest();  // finishes: call once

 private:
  EVP_MD_CTX* ctx_;
};

std::string Sha256Hex(std::string_view data);

// Where bytes go. Write returns false on failure (the reason is in error()).
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual bool Write(const void* data, size_t n) = 0;
  virtual Status Finish() = 0;
  virtual const std::string& error() const = 0;
};

// Writes to a file, counting and hashing what it writes.
class FileSink : public ByteSink {
 public:
  static Result<std::unique_ptr<FileSink>> Open(const std::string& path);
  ~FileSink() override;
  bool Write(const void* data, size_t n) override;
  Status Finish() override;  // flushes and closes
  const std::string& error() const override { return error_; }
  uint64_t bytes() const { return bytes_; }
  std::string digest() const { return digest_; }  // "sha256:<hex>" after Finish

 private:
  FileSink(std::string path, FILE* f) : path_(std::move(path)), file_(f) {}
  std::string path_;
  FILE* file_;
  Hasher hash_;
  uint64_t bytes_ = 0;
  std::string digest_;
  std::string error_;
};

// gzip-compresses into another sink: mtime 0, no name, OS byte 255
// ("unknown"), so equal input gives equal output on every host. Counts and
// hashes the uncompressed stream (an image layer's diff_id).
class GzipSink : public ByteSink {
 public:
  GzipSink(ByteSink* out, int level);
  ~GzipSink() override;
  bool Write(const void* data, size_t n) override;
  Status Finish() override;  // ends the gzip stream, then finishes `out`
  const std::string& error() const override { return error_; }
  uint64_t bytes() const { return bytes_; }
  std::string digest() const { return digest_; }  // of the uncompressed bytes, after Finish

 private:
  bool Deflate(int flush);
  ByteSink* out_;
  z_stream z_{};
  gz_header header_{};
  bool ok_ = true;
  Hasher hash_;
  uint64_t bytes_ = 0;
  std::string digest_;
  std::string error_;
};

// A tar stream whose every entry has mtime `mtime`, uid/gid 0, no user or
// group names and only the given mode: nothing from the host.
class TarWriter {
 public:
  TarWriter(ByteSink* out, int64_t mtime);
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // `path` is relative ("usr/bin/berth"); directories without a trailing slash.
  Status AddDirectory(const std::string& path, int mode);
  Status AddSymlink(const std::string& path, const std::string& target);
  // `mode` must be the target's: extractors apply it to the shared inode.
  Status AddHardlink(const std::string& path, const std::string& target, int mode);
  Status AddBytes(const std::string& path, int mode, std::string_view data);
  // Copies `size` bytes from `source`, calling `on_data` with every chunk
  // (for checksums and progress). FailedPrecondition if it cannot be read
  // or its size changed.
  Status AddFile(const std::string& path, int mode, const std::string& source, uint64_t size,
                 const std::function<void(const char*, size_t)>& on_data = nullptr);
  // Writes the end-of-archive blocks and finishes the sink.
  Status Finish();

 private:
  Status Header(const std::string& path, char type, int mode, uint64_t size, const std::string& link);
  Status RawHeader(const std::string& name, const std::string& prefix, char type, int mode, uint64_t size,
                   const std::string& link);
  Status Write(const void* data, size_t n, const std::string& path);
  Status Pad(uint64_t size, const std::string& path);  // zeros up to the next 512-byte record
  Status Error(const std::string& what) const;

  ByteSink* out_;
  int64_t mtime_;
  bool finished_ = false;
};

}  // namespace berth
