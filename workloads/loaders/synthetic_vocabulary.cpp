// The word lists of the synthetic generator (written for semskip).
#include <cctype>
#include <unordered_map>

#include "core/error.h"
#include "core/strings.h"
#include "workloads/loaders/synthetic.h"

namespace semskip {

struct SyntheticVocabulary::Data {
  // A pattern has bound slot {topic} (part of the template's identity) and free slots filled
  // per request: {place}, {person}, {number}, {day}.
  std::vector<std::string> patterns = {
      "How can I fix my {topic} before {day}?",
      "What is the best way to learn {topic} in {place}?",
      "Can you explain {topic} to {person} in simple words?",
      "Write a short story about {topic} and {person}.",
      "Give me {number} quick tips for {topic}.",
      "Why is my {topic} so slow when I am in {place}?",
      "Summarize the main ideas of {topic} for {person}.",
      "What should I know about {topic} before I travel to {place}?",
      "Help me plan {topic} for {number} people on {day}.",
      "Is it a good idea to start {topic} on {day}?",
      "Tell me a simple fact about {topic} that {person} would like.",
      "Make a list of {number} common mistakes with {topic}.",
      "Where can I buy good supplies for {topic} in {place}?",
      "How much time does {topic} need every {day}?",
      "Write a polite question about {topic} for {person}.",
      "Which {number} books about {topic} would you suggest for {person}?",
  };
  std::vector<std::string> topics = {
      "gardening", "cooking", "baking bread", "running", "chess", "photography", "budgeting",
      "painting", "guitar practice", "home repair", "bird watching", "camping", "knitting",
      "swimming", "public speaking", "job interviews", "car care", "writing poems",
      "learning French", "saving energy", "yoga", "fishing", "beekeeping", "woodworking",
      "meal planning", "house cleaning", "dog training", "hiking", "cycling", "pottery",
      "stargazing", "brewing tea", "roasting coffee", "sleep habits", "time management",
      "email writing", "rock climbing", "sewing", "bicycle repair", "sailing"};
  std::vector<std::string> openers = {
      "", "Please answer: ", "Quick question: ", "I need help. ", "Hello! ", "Be brief. ",
      "One more thing: ", "Thanks in advance. "};
  std::vector<std::pair<std::string, std::vector<std::string>>> slots = {
      {"{place}", {"Paris", "Berlin", "the city", "the village", "Tokyo", "the mountains",
                   "the office", "the countryside", "Cairo", "Lima", "Oslo", "the desert"}},
      {"{person}", {"my son", "my grandmother", "a beginner", "a child", "my boss", "a friend",
                    "a student", "my neighbour", "my sister", "a teacher", "my uncle", "a nurse"}},
      {"{number}", {"three", "five", "seven", "ten", "two", "four", "six", "eight", "nine",
                    "twelve", "eleven", "twenty"}},
      {"{day}", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
                 "the weekend", "tomorrow", "next week", "the holiday", "the evening"}},
  };
  std::vector<std::vector<std::string>> synonyms = {
      {"fix", "repair", "mend"},          {"best", "finest", "ideal"},
      {"learn", "study", "master"},       {"explain", "describe", "clarify"},
      {"simple", "plain", "easy"},        {"words", "terms"},
      {"short", "brief", "concise"},      {"story", "tale"},
      {"quick", "fast", "rapid"},         {"tips", "hints", "pointers"},
      {"slow", "sluggish"},               {"summarize", "outline", "recap"},
      {"main", "key", "central"},         {"ideas", "points", "concepts"},
      {"travel", "journey"},              {"help", "assist", "aid"},
      {"plan", "organize", "arrange"},    {"people", "guests", "persons"},
      {"good", "great", "fine"},          {"start", "begin", "commence"},
      {"tell", "inform"},                 {"fact", "detail"},
      {"like", "enjoy", "love"},          {"list", "catalogue"},
      {"common", "frequent", "typical"},  {"mistakes", "errors", "blunders"},
      {"buy", "purchase", "get"},         {"supplies", "materials", "gear"},
      {"need", "require"},                {"every", "each"},
      {"polite", "courteous", "kind"},    {"question", "query"},
      {"write", "compose"},               {"make", "create"},
      {"can", "could"},                   {"please", "kindly"},
      {"hello", "hi"},                    {"give", "offer", "provide"},
      {"books", "volumes", "texts"},      {"suggest", "recommend", "propose"},
      {"know", "understand"},             {"way", "method", "approach"},
  };
  std::vector<std::string> answer_sentences = {
      "Start with the basics and practise a little every day.",
      "Most people find it easier after a few weeks.",
      "Keep notes of what works and what does not.",
      "Ask someone with experience to show you the first steps.",
      "Good tools help, but patience matters more.",
      "Set a small goal and check your progress each week.",
      "Do not worry about mistakes; they are how you learn.",
      "A local club or library is a good place to find advice.",
      "Plan your time so that you can rest between sessions.",
      "Read one good book on the subject and follow its advice.",
  };
  std::unordered_map<std::string, size_t> group_of;  // lower-case word → synonyms index

  Data() {
    for (size_t g = 0; g < synonyms.size(); ++g)
      for (const std::string& w : synonyms[g]) {
        SEMSKIP_ASSERT(group_of.count(w) == 0);  // a word in two groups would be ambiguous
        group_of[w] = g;
      }
  }
};

SyntheticVocabulary::SyntheticVocabulary() : data_(std::make_unique<const Data>()) {}
SyntheticVocabulary::~SyntheticVocabulary() = default;

const SyntheticVocabulary& SyntheticVocabulary::get() {
  static const SyntheticVocabulary vocab;
  return vocab;
}

int64_t SyntheticVocabulary::max_templates() const {
  return static_cast<int64_t>(data_->patterns.size() * data_->topics.size() * data_->openers.size());
}

int64_t SyntheticVocabulary::max_fillers() const {
  size_t n = data_->slots.front().second.size();
  for (const auto& s : data_->slots) n = std::min(n, s.second.size());
  return static_cast<int64_t>(n);
}

std::string SyntheticVocabulary::render(int64_t t, int64_t fillers, Rng& rng) const {
  SEMSKIP_ASSERT(t >= 0 && t < max_templates() && fillers >= 1 && fillers <= max_fillers());
  const size_t np = data_->patterns.size(), nt = data_->topics.size();
  const size_t ut = static_cast<size_t>(t);
  std::string text = data_->openers[ut / (np * nt)] + data_->patterns[ut % np];
  const std::string& topic = data_->topics[(ut / np) % nt];
  for (size_t pos; (pos = text.find("{topic}")) != std::string::npos;) text.replace(pos, 7, topic);
  // Free slots in order of appearance; template t sees `fillers` consecutive values of each
  // list starting at an offset of its own, so templates differ in their fillers too.
  while (true) {
    size_t best = std::string::npos, which = 0;
    for (size_t s = 0; s < data_->slots.size(); ++s) {
      size_t pos = text.find(data_->slots[s].first);
      if (pos < best) best = pos, which = s;
    }
    if (best == std::string::npos) break;
    const std::vector<std::string>& values = data_->slots[which].second;
    const size_t offset = (ut * 7 + which * 3) % values.size();
    const size_t choice = (offset + rng.below(static_cast<uint64_t>(fillers))) % values.size();
    text.replace(best, data_->slots[which].first.size(), values[choice]);
  }
  return text;
}

namespace {

// Splits "Word," into core "Word" and tail ","; the core is what synonyms are looked up by.
void split_word(const std::string& w, std::string& core, std::string& tail) {
  size_t end = w.size();
  while (end > 0 && std::ispunct(static_cast<unsigned char>(w[end - 1]))) --end;
  core = w.substr(0, end);
  tail = w.substr(end);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::string SyntheticVocabulary::paraphrase(const std::string& text, double p, Rng& rng) const {
  std::vector<std::string> words = split(text, ' ');
  std::string core, tail;
  for (std::string& word : words) {
    split_word(word, core, tail);
    const std::string key = lower(core);
    auto it = data_->group_of.find(key);
    if (it == data_->group_of.end()) continue;
    // Both draws happen for every paraphrasable word whatever p is, so that p changes which
    // words are replaced but not the random stream that the rest of the request uses.
    const double u = rng.uniform();
    const std::vector<std::string>& group = data_->synonyms[it->second];
    const uint64_t pick = rng.below(group.size() - 1);
    if (u >= p) continue;
    size_t self = 0;
    while (group[self] != key) ++self;
    std::string repl = group[pick >= self ? pick + 1 : pick];
    if (std::isupper(static_cast<unsigned char>(core[0])))
      repl[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(repl[0])));
    word = repl + tail;
  }
  return join(words, " ");
}

int64_t SyntheticVocabulary::n_paraphrasable(const std::string& text) const {
  int64_t n = 0;
  std::string core, tail;
  for (const std::string& word : split(text, ' ')) {
    split_word(word, core, tail);
    n += data_->group_of.count(lower(core)) ? 1 : 0;
  }
  return n;
}

std::string SyntheticVocabulary::answer(int64_t t, Rng& rng) const {
  const std::string& topic = data_->topics[(static_cast<size_t>(t) / data_->patterns.size()) %
                                           data_->topics.size()];
  std::string out = "Here is what I know about " + topic + ".";
  const int64_t n = rng.between(2, 8);
  for (int64_t k = 0; k < n; ++k) {
    out += ' ';
    out += data_->answer_sentences[rng.below(data_->answer_sentences.size())];
  }
  return out;
}

}  // namespace semskip
