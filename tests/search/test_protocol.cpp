// Tests of search/protocol.cpp: messages round-trip and malformed ones are rejected.
#include <gtest/gtest.h>

#include "search/protocol.hpp"

using namespace dcs::search;

TEST(Protocol, WorkRoundTrip) {
    WorkMessage m{42, {0, 3, 1, 2, 5}};
    WorkMessage back = decode_work(encode_work(m));
    EXPECT_EQ(back.job, 42);
    EXPECT_EQ(back.genome, m.genome);
}

TEST(Protocol, ResultRoundTrip) {
    ResultMessage m;
    m.job = 7;
    m.evaluation.genome = {1, 0, 2};
    m.evaluation.ok = false;
    m.evaluation.error = "layer 'fc1': unsupported \xce\xbb";
    m.evaluation.accuracy = 0.8123;
    m.evaluation.size_bytes = 12345;
    m.evaluation.bops = 1.5e9;
    m.evaluation.latency = 0.002;
    m.evaluation.seconds = 0.25;
    m.evaluation.rank = 3;
    ResultMessage b = decode_result(encode_result(m));
    EXPECT_EQ(b.job, 7);
    EXPECT_EQ(b.evaluation.genome, m.evaluation.genome);
    EXPECT_FALSE(b.evaluation.ok);
    EXPECT_EQ(b.evaluation.error, m.evaluation.error);
    EXPECT_EQ(b.evaluation.accuracy, m.evaluation.accuracy);
    EXPECT_EQ(b.evaluation.size_bytes, m.evaluation.size_bytes);
    EXPECT_EQ(b.evaluation.bops, m.evaluation.bops);
    EXPECT_EQ(b.evaluation.latency, m.evaluation.latency);
    EXPECT_EQ(b.evaluation.rank, 3);
}

TEST(Protocol, TextRoundTrip) { EXPECT_EQ(decode_text(encode_text("config.yaml line 3: bad")), "config.yaml line 3: bad"); }

TEST(Protocol, MalformedMessagesThrow) {
    auto bytes = encode_result(ResultMessage{1, {}});
    for (size_t n = 0; n < bytes.size(); ++n)
        EXPECT_THROW(decode_result(std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(n))), ProtocolError) << n;
    auto extra = encode_work(WorkMessage{1, {1, 2}});
    extra.push_back('x');
    EXPECT_THROW(decode_work(extra), ProtocolError);
    auto bad_version = encode_text("x");
    bad_version[0] = 9;
    EXPECT_THROW(decode_text(bad_version), ProtocolError);
    std::vector<char> huge_genome = encode_work(WorkMessage{1, {}});
    huge_genome[9] = '\x7f';  // genome length field claims far more than the message holds
    EXPECT_THROW(decode_work(huge_genome), ProtocolError);
}
