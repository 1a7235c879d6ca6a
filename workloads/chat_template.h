#pragma once
// Chat templates rendered natively as text (the text is then tokenized; special tokens such
// as <|im_start|> become single tokens when the tokenizer has them).

#include <string>
#include <string_view>
#include <vector>

namespace semskip {

enum class ChatRole { system, user, assistant };

struct ChatMessage {
  ChatRole role = ChatRole::user;
  std::string content;
};

enum class ChatTemplate {
  plain,   // message contents only, joined by "\n" (models without a chat format)
  chatml,  // Qwen2 / Qwen2-MoE: <|im_start|>role\ncontent<|im_end|>\n
  llama3,  // Llama 3: <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
};

// "auto" is resolved against the model family by chat_template_for_model_type.
const char* chat_role_name(ChatRole r);
const char* chat_template_name(ChatTemplate t);
// "plain" | "chatml" | "llama3"; semskip::Error naming `what` otherwise.
ChatTemplate parse_chat_template(std::string_view name, std::string_view what);
// The family's template: qwen2, qwen2_moe → chatml; llama → llama3; anything else → plain.
ChatTemplate chat_template_for_model_type(std::string_view model_type);

// The prompt text for `messages`; with add_generation_prompt the assistant's turn is opened,
// as Hugging Face's apply_chat_template(..., add_generation_prompt=True) does.
std::string render_chat(const std::vector<ChatMessage>& messages, ChatTemplate tmpl,
                        bool add_generation_prompt = true);

}  // namespace semskip
