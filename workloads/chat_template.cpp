#include "workloads/chat_template.h"

#include "core/error.h"
#include "core/strings.h"

namespace semskip {

const char* chat_role_name(ChatRole r) {
  switch (r) {
    case ChatRole::system: return "system";
    case ChatRole::user: return "user";
    case ChatRole::assistant: return "assistant";
  }
  SEMSKIP_ASSERT(false);
  return "";
}

const char* chat_template_name(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::plain: return "plain";
    case ChatTemplate::chatml: return "chatml";
    case ChatTemplate::llama3: return "llama3";
  }
  SEMSKIP_ASSERT(false);
  return "";
}

ChatTemplate parse_chat_template(std::string_view name, std::string_view what) {
  if (name == "plain") return ChatTemplate::plain;
  if (name == "chatml") return ChatTemplate::chatml;
  if (name == "llama3") return ChatTemplate::llama3;
  SEMSKIP_THROW_MSG("{}: unknown chat template '{}' (expected auto, plain, chatml or llama3)", what,
                    name);
}

ChatTemplate chat_template_for_model_type(std::string_view model_type) {
  if (model_type == "qwen2" || model_type == "qwen2_moe") return ChatTemplate::chatml;
  if (model_type == "llama") return ChatTemplate::llama3;
  return ChatTemplate::plain;
}

std::string render_chat(const std::vector<ChatMessage>& messages, ChatTemplate tmpl,
                        bool add_generation_prompt) {
  std::string out;
  switch (tmpl) {
    case ChatTemplate::plain:
      // No roles: a base model sees the conversation as running text.
      for (size_t i = 0; i < messages.size(); ++i) {
        if (i) out += '\n';
        out += messages[i].content;
      }
      return out;
    case ChatTemplate::chatml:
      // Qwen2's template, without its implicit default system message: the conversation's
      // own system turn is kept, none is invented.
      for (const ChatMessage& m : messages) {
        out += "<|im_start|>";
        out += chat_role_name(m.role);
        out += '\n';
        out += m.content;
        out += "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    case ChatTemplate::llama3:
      // Llama 3's template: BOS once, each content trimmed of surrounding whitespace.
      out += "<|begin_of_text|>";
      for (const ChatMessage& m : messages) {
        out += "<|start_header_id|>";
        out += chat_role_name(m.role);
        out += "<|end_header_id|>\n\n";
        out += trim(m.content);
        out += "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
  }
  SEMSKIP_ASSERT(false);
  return out;
}

}  // namespace semskip
