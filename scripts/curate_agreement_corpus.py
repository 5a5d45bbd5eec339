#!/usr/bin/env python3
"""Agreement corpus for kiln curate vs datatrove: text shaped like web pages.

  curate_agreement_corpus.py OUT.jsonl [DOCS=6000] [SEED=10]

Writes DOCS JSONL records {"id", "shape", "text"}, deterministic for a seed. Every shape a
crawl gives appears, each in variants built to pass every rule and variants built to trip
one: multi-paragraph articles (blank lines, CRLF, lines of spaces, trailing spaces, final
newlines, Unicode line and paragraph separators), forum threads, listicles with bullets,
pages with navigation and cookie boilerplate, code blocks, tables in text, headings, very
long and very short lines, non-English paragraphs, repeated lines/paragraphs/n-grams, short
pages, symbol-heavy pages, ellipsis-heavy pages, lorem ipsum, javascript notices.

The corpus measures agreement on rules, so no shape is tuned to the rules' thresholds and
sizes are drawn from wide ranges: documents land on both sides of every threshold.
"""
import json
import random
import sys

STOP = ["the", "be", "to", "of", "and", "that", "have", "with", "a", "in", "is", "it", "for", "on", "as", "was"]
WORDS = """time year people way day man thing woman life child world school state family student group country
problem hand part place case week company system program question work government number night point home
water room mother area money story fact month lot right study book eye job word business issue side kind head
house service friend father power hour game line end member law car city community name president team minute
idea kid body information back parent face others level office door health person art war history party result
change morning reason research girl guy moment air teacher force education river garden market lantern harbor
meadow window village engine letter forest bridge kitchen station picture journey answer library mountain painter
doctor farmer carpet candle silver yellow quiet bright ancient narrow gentle report season weather island valley
recipe flour butter oven bread coffee travel ticket museum concert camera battery keyboard screen signal network""".split()
VERBS = """said made found took came gave told became showed turned started brought wrote learned opened built
moved walked carried decided explained reported watched followed described noticed remembered changed""".split()
GERMAN = "der die das und ist nicht mit von dem den ein eine auch auf sich Stadt Haus Zeit Jahr Weg Arbeit Schule Wasser Garten Fenster".split()
FRENCH = "le la les et est pas avec de des un une aussi sur dans ville maison temps année chemin travail école eau jardin fenêtre".split()
SPANISH = "el la los las y es no con de del un una también en ciudad casa tiempo año camino trabajo escuela agua jardín ventana".split()
RUSSIAN = "и в не на что с по это как он она город дом время год путь работа школа вода сад окно река".split()
CHINESE = "我们今天去公园散步天气很好孩子们在草地上玩耍老人们在树下聊天城市的生活节奏很快但是周末大家都喜欢出去走走"
ARABIC = "في من على إلى عن مع هذا هذه التي الذي كان مدينة بيت وقت سنة طريق عمل مدرسة ماء حديقة نافذة".split()


def sentence(rng, min_words=7, max_words=22, end=None):
    words = []
    for _ in range(rng.randint(min_words, max_words)):
        roll = rng.random()
        if roll < 0.33:
            words.append(rng.choice(STOP))
        elif roll < 0.43:
            words.append(rng.choice(VERBS))
        elif roll < 0.46:
            words.append(str(rng.randint(2, 2030)))
        else:
            words.append(rng.choice(WORDS))
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), rng.choice(["it's", "don't", "we're", "(often)", "well-known", "U.S."]))
    if rng.random() < 0.25:
        words[rng.randrange(len(words))] += ","
    words[0] = words[0].capitalize()
    return " ".join(words) + (end if end is not None else rng.choice([".", ".", ".", ".", "?", "!"]))


def paragraph(rng, sentences=None):
    return " ".join(sentence(rng) for _ in range(sentences or rng.randint(1, 5)))


def foreign_sentence(rng, vocab):
    words = [rng.choice(vocab) for _ in range(rng.randint(6, 16))]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", "?"])


def chinese_sentence(rng):
    return "".join(rng.choice(CHINESE) for _ in range(rng.randint(8, 30))) + rng.choice(["。", "。", "？", "！"])


def article(rng, separator="\n\n", paragraphs=None, line_end=""):
    count = paragraphs or rng.randint(2, 9)
    return separator.join(paragraph(rng) + line_end for _ in range(count))


def with_headings(rng):
    parts = []
    for i in range(rng.randint(2, 6)):
        style = rng.choice(["#", "##", "", "bold"])
        title = " ".join(rng.choice(WORDS).capitalize() for _ in range(rng.randint(1, 4)))
        heading = {"#": "# " + title, "##": "## " + title, "": title, "bold": "**" + title + "**"}[style]
        parts.append(heading)
        parts.append(paragraph(rng, rng.randint(1, 4)))
    return rng.choice(["\n\n", "\n"]).join(parts)


def forum_thread(rng):
    posts = []
    for _ in range(rng.randint(2, 8)):
        user = rng.choice(WORDS) + str(rng.randint(1, 999))
        header = rng.choice([f"{user} wrote:", f"Posted by {user}", f"Re: {rng.choice(WORDS)} {rng.choice(WORDS)}", f"> {sentence(rng, 4, 9)}"])
        body = paragraph(rng, rng.randint(1, 3))
        extra = rng.choice(["", "\nThanks!", "\n+1", "\nQuote", "\nReply"])
        posts.append(header + "\n" + body + extra)
    return "\n\n".join(posts)


def listicle(rng):
    bullet = rng.choice(["• ", "- ", "* ", "1. "])
    intro = paragraph(rng, rng.randint(0, 3)) if rng.random() < 0.7 else ""
    items = []
    for i in range(rng.randint(3, 15)):
        marker = f"{i + 1}. " if bullet == "1. " else bullet
        items.append(marker + (sentence(rng, 3, 14) if rng.random() < 0.7 else " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))))
    body = rng.choice(["\n", "\n\n"]).join(items)
    return (intro + "\n\n" + body if intro else body) + ("\n\n" + paragraph(rng) if rng.random() < 0.5 else "")


def navigation_page(rng):
    nav = rng.choice(["Home | About | Contact | Blog", "Home\nAbout\nContact\nBlog", "Menu", "Skip to content", "Sign in Register"])
    footer = rng.choice([
        "This site uses cookies to improve your experience.",
        "Privacy Policy | Terms of Use",
        "By using this site you agree to our use of cookies.",
        "Copyright 2024. All rights reserved.",
        "Please enable JavaScript to view the comments.",
        "Share this:\nFacebook\nTwitter\nEmail",
    ])
    return nav + "\n" + article(rng, rng.choice(["\n\n", "\n"])) + "\n" + footer


def code_page(rng):
    code = rng.choice([
        "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
        "int main() {\n  printf(\"hello\\n\");\n  return 0;\n}",
        "for i in range(10):\n    print(i)",
        "```\nnpm install --save kiln\n```",
        "SELECT name, age FROM users WHERE age > 30;",
    ])
    return article(rng, paragraphs=rng.randint(1, 4)) + "\n\n" + code + "\n\n" + paragraph(rng)


def table_page(rng):
    rows = ["| Name | Age | City |", "|---|---|---|"] if rng.random() < 0.5 else ["Name\tAge\tCity"]
    for _ in range(rng.randint(2, 12)):
        name, city = rng.choice(WORDS).capitalize(), rng.choice(WORDS).capitalize()
        age = rng.randint(18, 90)
        rows.append(f"| {name} | {age} | {city} |" if rows[0].startswith("|") else f"{name}\t{age}\t{city}")
    return paragraph(rng, rng.randint(1, 4)) + "\n\n" + "\n".join(rows) + "\n\n" + paragraph(rng, rng.randint(0, 3))


def non_english(rng):
    language = rng.choice(["de", "fr", "es", "ru", "zh", "ar", "mixed"])
    vocab = {"de": GERMAN, "fr": FRENCH, "es": SPANISH, "ru": RUSSIAN, "ar": ARABIC}.get(language)
    paragraphs = []
    for _ in range(rng.randint(2, 6)):
        if language == "zh":
            paragraphs.append("".join(chinese_sentence(rng) for _ in range(rng.randint(1, 5))))
        elif language == "mixed":
            paragraphs.append(paragraph(rng) if rng.random() < 0.5 else " ".join(foreign_sentence(rng, rng.choice([GERMAN, RUSSIAN])) for _ in range(3)))
        else:
            paragraphs.append(" ".join(foreign_sentence(rng, vocab) for _ in range(rng.randint(1, 5))))
    return "\n\n".join(paragraphs)


def long_lines(rng):
    if rng.random() < 0.5:
        return " ".join(paragraph(rng, 5) for _ in range(rng.randint(3, 20)))  # one very long line
    return article(rng) + "\n" + "x" * rng.randint(200, 3000)  # a very long "word"


def short_lines(rng):
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6))) + rng.choice(["", "", ",", "."]) for _ in range(rng.randint(4, 40))]
    return rng.choice(["\n", "\n\n"]).join(lines)


def repeated_lines(rng):
    base = article(rng, "\n")
    line = sentence(rng)
    lines = base.split("\n") + [line] * rng.randint(1, 12)
    rng.shuffle(lines)
    return "\n".join(lines)


def repeated_paragraphs(rng):
    paragraphs = [paragraph(rng) for _ in range(rng.randint(2, 6))]
    paragraphs += [rng.choice(paragraphs) for _ in range(rng.randint(1, 5))]
    return "\n\n".join(paragraphs)


def repeated_ngrams(rng):
    phrase = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
    text = article(rng)
    words = text.split(" ")
    for _ in range(rng.randint(1, 30)):
        words.insert(rng.randrange(len(words)), phrase)
    return " ".join(words)


def boilerplate_footer(rng):
    footer = "Subscribe to our newsletter for the latest news and updates from the team."
    return article(rng) + ("\n\n" + footer) * rng.randint(1, 4)


def short_page(rng):
    return " ".join(sentence(rng, 3, 10) for _ in range(rng.randint(1, 5)))


def symbols_page(rng):
    tags = " ".join("#" + rng.choice(WORDS) for _ in range(rng.randint(1, 60)))
    return article(rng) + "\n" + tags


def ellipsis_page(rng):
    lines = [sentence(rng, end=rng.choice(["...", "…", ".", "."])) for _ in range(rng.randint(3, 15))]
    return "\n".join(lines)


def lorem_page(rng):
    return article(rng) + "\n" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit."


def stopwordless_page(rng):
    return " ".join(" ".join(rng.choice(WORDS).capitalize() for _ in range(rng.randint(2, 8))) + "." for _ in range(rng.randint(8, 30)))


# Shapes of the same article that only change its line endings and blank lines.
def layout_variant(rng):
    variant = rng.choice(["crlf", "spaces_line", "trailing_spaces", "final_newline", "u2028", "u2029", "nel",
                          "three_newlines", "leading_newline", "tabs_line", "crlf_final"])
    separator = {"crlf": "\r\n\r\n", "spaces_line": "\n   \n", "u2028": "\u2028\u2028", "u2029": "\u2029",
                 "nel": "\u0085\u0085", "three_newlines": "\n\n\n", "tabs_line": "\n\t\n", "crlf_final": "\r\n\r\n"}.get(variant, "\n\n")
    text = article(rng, separator, line_end="  " if variant == "trailing_spaces" else "")
    if variant == "final_newline":
        text += "\n"
    if variant == "crlf_final":
        text += "\r\n"
    if variant == "leading_newline":
        text = "\n" + text
    return "layout_" + variant, text


SHAPES = [
    (18, "article", lambda rng: article(rng)),
    (4, "article_single_newlines", lambda rng: article(rng, "\n")),
    (12, None, layout_variant),
    (6, "headings", with_headings),
    (6, "forum_thread", forum_thread),
    (6, "listicle", listicle),
    (6, "navigation", navigation_page),
    (4, "code", code_page),
    (4, "table", table_page),
    (6, "non_english", non_english),
    (3, "long_lines", long_lines),
    (3, "short_lines", short_lines),
    (4, "repeated_lines", repeated_lines),
    (4, "repeated_paragraphs", repeated_paragraphs),
    (4, "repeated_ngrams", repeated_ngrams),
    (3, "boilerplate_footer", boilerplate_footer),
    (3, "short_page", short_page),
    (2, "symbols", symbols_page),
    (2, "ellipsis", ellipsis_page),
    (1, "lorem_ipsum", lorem_page),
    (2, "no_stop_words", stopwordless_page),
]


def make(rng):
    total = sum(weight for weight, _, _ in SHAPES)
    roll = rng.uniform(0, total)
    for weight, name, build in SHAPES:
        roll -= weight
        if roll <= 0:
            break
    if name is None:
        return build(rng)
    return name, build(rng)


def main():
    out, docs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 6000
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 10)
    with open(out, "w", encoding="utf-8") as f:
        for i in range(docs):
            shape, text = make(rng)
            f.write(json.dumps({"id": f"doc-{i:06d}", "shape": shape, "text": text}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
