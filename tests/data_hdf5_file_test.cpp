// The checked HDF5 layer: round trips, and the errors a user meets name the file and the object.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "core/check.h"
#include "data/hdf5_file.h"

namespace rw::h5 {
namespace {

namespace fs = std::filesystem;

class Hdf5FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ringwise_h5_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  template <typename F>
  std::string user_error(F f) {
    try {
      f();
    } catch (const UserError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no UserError";
    return "";
  }

  fs::path dir_;
};

TEST_F(Hdf5FileTest, DatasetsAttributesAndGroupsRoundTrip) {
  std::vector<float> w = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
  std::vector<uint16_t> tokens = {0, 1, 65535, 42};
  {
    File f = File::create(path("a.h5"));
    f.write("model/layers/0/w", w.data(), {2, 3});
    f.write("tokens", tokens.data(), {4}, 6);
    f.set_attr("/", "name", std::string("ringwise"));
    f.set_attr("/", "step", int64_t{-12});
    f.set_attr("tokens", "scale", 0.125);
    f.set_attr("/", "name", std::string("overwritten"));
    f.close();
  }
  File f = File::open(path("a.h5"));
  EXPECT_TRUE(f.has("model/layers/0/w"));
  EXPECT_TRUE(f.has("/model/layers"));
  EXPECT_FALSE(f.has("model/layers/1/w"));
  EXPECT_FALSE(f.has("nothing/here"));
  EXPECT_EQ(f.list("model/layers"), std::vector<std::string>{"0"});
  std::vector<float> w2(6);
  f.read("model/layers/0/w", w2.data(), {2, 3});
  EXPECT_EQ(w, w2);
  DatasetInfo info = f.info("tokens");
  EXPECT_EQ(info.shape, (Shape{4}));
  EXPECT_FALSE(info.is_float);
  EXPECT_EQ(info.element_size, 2u);
  std::vector<int32_t> t2(4);  // integers widen on read
  f.read("tokens", t2.data(), {4});
  EXPECT_EQ(t2, (std::vector<int32_t>{0, 1, 65535, 42}));
  std::vector<int32_t> mid(2);
  f.read_range("tokens", 1, 2, mid.data());
  EXPECT_EQ(mid, (std::vector<int32_t>{1, 65535}));
  EXPECT_EQ(f.attr_string("/", "name"), "overwritten");
  EXPECT_EQ(f.attr_int("/", "step"), -12);
  EXPECT_EQ(f.attr_double("tokens", "scale"), 0.125);
  EXPECT_FALSE(f.has_attr("/", "missing"));
}

TEST_F(Hdf5FileTest, AppenderGrowsOneDataset) {
  {
    File f = File::create(path("app.h5"));
    Appender<uint32_t> app(f, "tokens", 4, 1);
    std::vector<uint32_t> chunk = {1, 2, 3};
    for (int i = 0; i < 5; ++i) app.append(chunk.data(), 3);
    EXPECT_EQ(app.size(), 15);
  }
  File f = File::open(path("app.h5"));
  std::vector<uint32_t> all(15);
  f.read("tokens", all.data(), {15});
  for (int i = 0; i < 15; ++i) EXPECT_EQ(all[i], static_cast<uint32_t>(i % 3 + 1));
}

TEST_F(Hdf5FileTest, BadFilesAndObjectsAreNamed) {
  std::string msg = user_error([&] { File::open(path("missing.h5")); });
  EXPECT_NE(msg.find("missing.h5"), std::string::npos) << msg;

  std::ofstream(path("text.h5")) << "not hdf5 at all";
  msg = user_error([&] { File::open(path("text.h5")); });
  EXPECT_NE(msg.find("not an HDF5 file"), std::string::npos) << msg;

  std::vector<float> w(6, 1.0f);
  {
    File f = File::create(path("b.h5"));
    f.write("w", w.data(), {2, 3});
  }
  // A truncated copy must be refused, not half-read.
  fs::copy_file(path("b.h5"), path("cut.h5"));
  fs::resize_file(path("cut.h5"), fs::file_size(path("cut.h5")) / 2);
  msg = user_error([&] {
    File f = File::open(path("cut.h5"));
    std::vector<float> out(6);
    f.read("w", out.data(), {2, 3});
  });
  EXPECT_NE(msg.find("cut.h5"), std::string::npos) << msg;

  File f = File::open(path("b.h5"));
  std::vector<float> out(6);
  msg = user_error([&] { f.read("nope", out.data(), {6}); });
  EXPECT_NE(msg.find("nope"), std::string::npos) << msg;
  EXPECT_NE(msg.find("b.h5"), std::string::npos) << msg;
  msg = user_error([&] { f.read("w", out.data(), {3, 2}); });
  EXPECT_NE(msg.find("[2, 3]"), std::string::npos) << msg;
  std::vector<int32_t> ints(6);
  msg = user_error([&] { f.read("w", ints.data(), {2, 3}); });
  EXPECT_NE(msg.find("float32"), std::string::npos) << msg;
  msg = user_error([&] { f.attr_int("/", "step"); });
  EXPECT_NE(msg.find("step"), std::string::npos) << msg;
}

}  // namespace
}  // namespace rw::h5
