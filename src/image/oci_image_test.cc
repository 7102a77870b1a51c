#include "image/oci_image.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "image/image_builder.h"
#include "image/sbom.h"

namespace berth {
namespace {

namespace fs = std::filesystem;

LayerBlob FakeLayer(const std::string& name, const std::string& digest_char) {
  LayerBlob l;
  l.name = name;
  l.digest = "sha256:" + std::string(64, digest_char[0]);
  l.diff_id = "sha256:" + std::string(64, 'd');
  l.size = 123;
  l.files.push_back({"usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 5, "aa", "bb"});
  l.files.push_back({"models/m/1/model.pt", "", 3, "cc", "dd"});
  return l;
}

TEST(OciImageTest, Rfc3339) {
  EXPECT_EQ(Rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Rfc3339(1700000000), "2023-11-14T22:13:20Z");
}

TEST(OciImageTest, ConfigAndManifestCarryTheRuntimeSettings) {
  ImageBuildOptions o;
  o.reference = "localhost:5000/team/churn:2";
  o.revision = "abc123";
  o.source_date_epoch = 86400;
  ImageMetadata m = MakeImageMetadata(o);
  EXPECT_EQ(m.title, "churn");
  EXPECT_EQ(m.version, "2");
  Image image = AssembleImage(m, {FakeLayer("system libraries", "a"), FakeLayer("models", "b")});
  EXPECT_EQ(image.config_digest, "sha256:" + Sha256Hex(image.config));
  EXPECT_EQ(image.manifest_digest, "sha256:" + Sha256Hex(image.manifest));
  for (const char* want :
       {R"("User":"65532:65532")", R"("ExposedPorts":{"8000/tcp":{},"8001/tcp":{},"8002/tcp":{}})",
        R"("Entrypoint":["/usr/bin/berth","serve","--model-repository","/models"])", R"("StopSignal":"SIGTERM")",
        R"("created":"1970-01-02T00:00:00Z")", R"("org.opencontainers.image.revision":"abc123")",
        R"("created_by":"berth build: models")"}) {
    EXPECT_NE(image.config.find(want), std::string::npos) << want << "\n" << image.config;
  }
  EXPECT_NE(image.manifest.find(image.config_digest), std::string::npos);
  EXPECT_NE(image.manifest.find(kOciLayerGzipType), std::string::npos);
  EXPECT_NE(image.manifest.find(R"("org.opencontainers.image.title":"churn")"), std::string::npos);
  // Same inputs, same digests.
  EXPECT_EQ(AssembleImage(m, image.layers).manifest_digest, image.manifest_digest);
  // No revision known: none written.
  o.revision.clear();
  EXPECT_EQ(AssembleImage(MakeImageMetadata(o), image.layers).config.find("revision"), std::string::npos);
}

TEST(OciImageTest, SbomListsFilesWithTheirPackages) {
  fs::path dpkg = fs::path(testing::TempDir()) / ("dpkg-" + std::to_string(::getpid()));
  fs::create_directories(dpkg / "info");
  std::ofstream(dpkg / "info" / "libc6:amd64.list") << "/.\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n";
  std::ofstream(dpkg / "status") << "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n"
                                    "Version: 2.36-9+deb12u4\n\nPackage: gone\nStatus: deinstall ok config-files\n"
                                    "Version: 1\n";
  DpkgIndex index = DpkgIndex::Load(dpkg.string());
  const DpkgPackage* p = index.Find("/usr/lib/x86_64-linux-gnu/libc.so.6");  // merged /usr
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "libc6");
  EXPECT_EQ(p->version, "2.36-9+deb12u4");
  EXPECT_EQ(index.Find("/usr/bin/none"), nullptr);
  ImageBuildOptions o;
  o.reference = "app:1";
  Image image = AssembleImage(MakeImageMetadata(o), {FakeLayer("system libraries", "a")});
  std::string sbom = SpdxJson(image, index, "0.1.0");
  for (const char* want : {R"("spdxVersion":"SPDX-2.3")", R"("fileName":"./usr/lib/x86_64-linux-gnu/libc.so.6")",
                           R"("fileName":"./models/m/1/model.pt")", R"("versionInfo":"2.36-9+deb12u4")",
                           "pkg:deb/debian/libc6@2.36-9+deb12u4?arch=amd64", R"("checksumValue":"aa")"}) {
    EXPECT_NE(sbom.find(want), std::string::npos) << want;
  }
  EXPECT_EQ(sbom, SpdxJson(image, index, "0.1.0"));
  EXPECT_EQ(NormalizeMergedUsr("/bin/sh"), "/usr/bin/sh");
  EXPECT_EQ(NormalizeMergedUsr("/usr/lib/x"), "/usr/lib/x");
  EXPECT_EQ(NormalizeMergedUsr("/libfoo"), "/libfoo");
  fs::remove_all(dpkg);
}

TEST(OciImageTest, AtomicWriteLeavesNothingOnFailure) {
  fs::path dir = fs::path(testing::TempDir()) / ("atomic-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string out = (dir / "out.tar").string();
  Status s = WriteSinkAtomically(out, [](ByteSink* sink) -> Status {
    sink->Write("partial", 7);
    return FailedPrecondition("boom");
  });
  EXPECT_EQ(s.message(), "boom");
  EXPECT_TRUE(fs::is_empty(dir));
  ASSERT_TRUE(WriteSinkAtomically(out, [](ByteSink* sink) -> Status {
                sink->Write("whole", 5);
                return sink->Finish();
              }).ok());
  EXPECT_EQ(fs::file_size(out), 5u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  Status bad = CheckWritable((dir / "no" / "such" / "dir.tar").string());
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("cannot be written"), std::string::npos);
  EXPECT_FALSE(CheckWritable(dir.string()).ok());  // a directory, not a file
  fs::remove_all(dir);
}

}  // namespace
}  // namespace berth
