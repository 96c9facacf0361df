#include "compress/layout.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

using namespace dcs::compress;

TEST(Layout, ConvWeightOutAxis0) {
    const Layout l = weight_layout({8, 3, 5, 5}, 0);
    EXPECT_EQ(l.outer, 1);
    EXPECT_EQ(l.channels, 8);
    EXPECT_EQ(l.inner, 75);
    EXPECT_EQ(l.numel(), 600);
    EXPECT_EQ(l.channel_of(0), 0);
    EXPECT_EQ(l.channel_of(74), 0);
    EXPECT_EQ(l.channel_of(75), 1);
    EXPECT_EQ(l.channel_of(599), 7);
}

TEST(Layout, MatMulWeightOutAxis1) {
    const Layout l = weight_layout({784, 300}, 1);
    EXPECT_EQ(l.outer, 784);
    EXPECT_EQ(l.channels, 300);
    EXPECT_EQ(l.inner, 1);
    // Element [k, n] is at k*300 + n and belongs to channel n.
    EXPECT_EQ(l.channel_of(5 * 300 + 17), 17);
}

TEST(Layout, MiddleAxisOfRank3) {
    const Layout l = weight_layout({2, 3, 4}, 1);
    EXPECT_EQ(l.outer, 2);
    EXPECT_EQ(l.channels, 3);
    EXPECT_EQ(l.inner, 4);
    // [1, 2, 3] -> (1*3 + 2)*4 + 3 = 23
    EXPECT_EQ(l.channel_of(23), 2);
    EXPECT_EQ(l.channel_of(12), 0);  // [1, 0, 0]
}

TEST(Layout, Rank1) {
    const Layout l = weight_layout({10}, 0);
    EXPECT_EQ(l.outer, 1);
    EXPECT_EQ(l.channels, 10);
    EXPECT_EQ(l.inner, 1);
}

TEST(Layout, RejectsBadShapesAndAxes) {
    EXPECT_THROW(weight_layout({}, 0), std::invalid_argument);
    EXPECT_THROW(weight_layout({4, 4}, 2), std::invalid_argument);
    EXPECT_THROW(weight_layout({4, 4}, -1), std::invalid_argument);
    EXPECT_THROW(weight_layout({4, 0}, 0), std::invalid_argument);
    EXPECT_THROW(weight_layout({4, -3}, 0), std::invalid_argument);
    EXPECT_THROW(weight_layout({int64_t{1} << 30, int64_t{1} << 30}, 0), std::invalid_argument);
    try {
        weight_layout({4, 4}, 5);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("out_axis 5"), std::string::npos) << e.what();
    }
}

TEST(Layout, ShapeString) {
    EXPECT_EQ(shape_string({784, 300}), "[784, 300]");
    EXPECT_EQ(shape_string({}), "[]");
}
