#include "data/corpus/filler_text.hpp"

#include <fmt/format.h>

#include <tuple>

namespace kiln::data {

namespace {

using Words = std::vector<std::string>;

const Words kTownsfolk = {"the baker", "the ferryman", "an old teacher", "the miller's daughter",
                          "a travelling musician", "the shepherd", "an old fisherman", "the innkeeper",
                          "a young clerk", "the blacksmith", "the doctor's son", "a woman from the coast"};
const Words kTownPlaces = {"the harbour", "the market square", "the mill", "the orchard", "the stone bridge",
                           "the north road", "the library", "the station", "the valley", "the lighthouse",
                           "the chapel", "the school yard"};
const Words kTimes = {"In the morning", "Before noon", "Late in the afternoon", "At dusk", "During the night",
                      "On the first day of spring", "Every Sunday", "After the harvest", "Early one winter",
                      "Towards the end of summer"};
const Words kWeatherClauses = {"a cold wind blew in from the sea", "rain fell on the slate roofs",
                               "the fog lifted slowly from the fields", "the sun warmed the garden walls",
                               "snow settled on the hills", "thunder rolled over the valley",
                               "a light drizzle kept everyone indoors", "the air smelled of cut grass"};
const Words kThings = {"a wooden box", "a bundle of letters", "a copper kettle", "a worn map",
                       "a basket of apples", "a brass lantern", "a silver spoon", "a coil of rope",
                       "a blue umbrella", "a jar of honey", "a broken clock", "a pair of boots"};
const Words kDeeds = {"carried", "repaired", "sold", "found", "painted", "wrapped", "borrowed", "lost",
                      "cleaned", "hid"};
const Words kCreatures = {"a grey heron", "the farm dog", "a family of ducks", "an old horse", "two crows",
                          "a red fox", "the baker's cat", "a flock of sparrows"};
const Words kPastimes = {"mending nets", "sweeping the steps", "reading the newspaper", "tuning a fiddle",
                         "stacking firewood", "feeding the goats", "writing a long letter", "picking plums"};
const Words kTopics = {"the coming winter", "an old friend", "the price of grain", "a letter from the city",
                       "the new schoolmaster", "the long road home", "the flood of the year before",
                       "a ship that never arrived"};

std::string capitalised(std::string text) {
  if (!text.empty() && text[0] >= 'a' && text[0] <= 'z') text[0] = static_cast<char>(text[0] - 'a' + 'A');
  return text;
}

// Two different entries of one list (a sentence about "the mill" and "the mill" reads oddly).
std::pair<std::string, std::string> two_of(Rng& rng, const Words& words) {
  const std::size_t first = rng.below(words.size());
  const std::size_t second = (first + 1 + rng.below(words.size() - 1)) % words.size();
  return {words[first], words[second]};
}

// Every slot a template may use, drawn in a fixed order: drawing inside the fmt::format
// arguments would leave the order to the compiler (argument evaluation order is unspecified)
// and the same seed could give different text on another platform.
struct Slots {
  std::string person, other_person, place, other_place, thing, other_thing;
  std::string time, weather, deed, creature, pastime, topic;
};

Slots draw_slots(Rng& rng) {
  Slots slots;
  std::tie(slots.person, slots.other_person) = two_of(rng, kTownsfolk);
  std::tie(slots.place, slots.other_place) = two_of(rng, kTownPlaces);
  std::tie(slots.thing, slots.other_thing) = two_of(rng, kThings);
  slots.time = rng.pick(kTimes);
  slots.weather = rng.pick(kWeatherClauses);
  slots.deed = rng.pick(kDeeds);
  slots.creature = rng.pick(kCreatures);
  slots.pastime = rng.pick(kPastimes);
  slots.topic = rng.pick(kTopics);
  return slots;
}

std::string sentence_from_template(const Slots& s, int which) {
  switch (which) {
    case 0: return fmt::format("{}, {} walked down to {}.", s.time, s.person, s.place);
    case 1: return fmt::format("{} {}.", s.time, s.weather);
    case 2: return fmt::format("{} {} {} near {}.", s.person, s.deed, s.thing, s.place);
    case 3: return fmt::format("{} waited by {} while {} was {}.", s.creature, s.place, s.person, s.pastime);
    case 4: return fmt::format("Nobody at {} could remember who had {} {}.", s.place, s.deed, s.thing);
    case 5: return fmt::format("{} spent the afternoon {} and thinking about {}.", s.person, s.pastime, s.topic);
    case 6: return fmt::format("The road from {} to {} was quiet, and {}.", s.place, s.other_place, s.weather);
    case 7: return fmt::format("At {}, {} and {} talked about {} until it grew dark.", s.place, s.person, s.other_person, s.topic);
    case 8: return fmt::format("{} said that {} had hardly changed in years.", s.person, s.place);
    case 9: return fmt::format("When {}, {} went back to {}.", s.weather, s.person, s.place);
    case 10: return fmt::format("There was {} on the table, and beside it {}.", s.thing, s.other_thing);
    case 11: return fmt::format("{} found {} at {} and took it home.", s.person, s.thing, s.place);
    case 12: return fmt::format("It was a long time before {} returned to {}.", s.person, s.place);
    case 13: return fmt::format("From {} one could see {} and, further away, the hills.", s.place, s.other_place);
    case 14: return fmt::format("{} watched {} for a while, then went on {}.", s.person, s.creature, s.pastime);
    default: return fmt::format("Some people said {} belonged to {}, but {} did not believe it.", s.thing, s.person, s.other_person);
  }
}

}  // namespace

std::string filler_sentence(Rng& rng) {
  const int which = static_cast<int>(rng.below(16));
  return capitalised(sentence_from_template(draw_slots(rng), which));
}

std::vector<std::string> filler_sentences(Rng& rng, std::size_t chars) {
  std::vector<std::string> sentences;
  std::size_t length = 0;
  while (length < chars) {
    sentences.push_back(filler_sentence(rng));
    length += sentences.back().size() + (sentences.size() > 1 ? 1 : 0);
  }
  return sentences;
}

std::string paragraphs_of(const std::vector<std::string>& sentences, Rng& rng) {
  std::string text;
  std::size_t left_in_paragraph = static_cast<std::size_t>(rng.between(3, 6));
  for (std::size_t i = 0; i < sentences.size(); ++i) {
    if (i > 0) {
      if (left_in_paragraph == 0) {
        text += "\n\n";
        left_in_paragraph = static_cast<std::size_t>(rng.between(3, 6));
      } else {
        text += ' ';
      }
    }
    text += sentences[i];
    --left_in_paragraph;
  }
  return text;
}

}  // namespace kiln::data
