#include <gtest/gtest.h>

#include "core/error.h"
#include "workloads/chat_template.h"

using namespace semskip;

namespace {
const std::vector<ChatMessage> kConversation = {
    {ChatRole::system, "Be brief."},
    {ChatRole::user, "Hi there"},
    {ChatRole::assistant, "Hello!"},
    {ChatRole::user, "  What is 2+2?\n"},
};
}  // namespace

TEST(ChatTemplate, ChatMlAsQwen2WritesIt) {
  EXPECT_EQ(render_chat(kConversation, ChatTemplate::chatml),
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi there<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\n  What is 2+2?\n<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render_chat({{ChatRole::user, "x"}}, ChatTemplate::chatml, false),
            "<|im_start|>user\nx<|im_end|>\n");
}

TEST(ChatTemplate, Llama3HeadersTrimContent) {
  EXPECT_EQ(render_chat(kConversation, ChatTemplate::llama3),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render_chat({{ChatRole::user, "x"}}, ChatTemplate::llama3, false),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
}

TEST(ChatTemplate, PlainJoinsContents) {
  EXPECT_EQ(render_chat(kConversation, ChatTemplate::plain),
            "Be brief.\nHi there\nHello!\n  What is 2+2?\n");
  EXPECT_EQ(render_chat({{ChatRole::user, "Only this."}}, ChatTemplate::plain), "Only this.");
}

TEST(ChatTemplate, FamilyAndNames) {
  EXPECT_EQ(chat_template_for_model_type("qwen2"), ChatTemplate::chatml);
  EXPECT_EQ(chat_template_for_model_type("qwen2_moe"), ChatTemplate::chatml);
  EXPECT_EQ(chat_template_for_model_type("llama"), ChatTemplate::llama3);
  EXPECT_EQ(chat_template_for_model_type("mixtral"), ChatTemplate::plain);
  EXPECT_EQ(chat_template_for_model_type(""), ChatTemplate::plain);
  for (ChatTemplate t : {ChatTemplate::plain, ChatTemplate::chatml, ChatTemplate::llama3})
    EXPECT_EQ(parse_chat_template(chat_template_name(t), "chat"), t);
  EXPECT_THROW(parse_chat_template("vicuna", "chat"), Error);
}
