"""The synthetic world behind the "loop" demo project: prompts with a known answer, responses
from six named source models of different skill, each response with a hidden quality, and
simulated labelers who judge by that quality (one of them carelessly).

Plain Python, no Django: annotate/services/demo.py feeds it through the real import and
labeling services. Seeded, so the same world comes out every time (and re-importing it adds
nothing).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Quality levels: 4 right and explained, 3 right and terse, 2 right but hedged, 1 confidently
# wrong, 0 no answer at all.
LEVELS = 5

# (name, mean quality): a clear ranking for the leaderboard to recover.
SOURCE_MODELS = [
    ("atlas-70b", 3.4),
    ("borealis-34b", 3.0),
    ("cirrus-13b", 2.5),
    ("dune-8b", 2.0),
    ("ember-3b", 1.5),
    ("fjord-1b", 1.0),
]
# Each model's manner, so that two models at the same level never give the same text.
STYLE = {
    "atlas-70b": ("", ""),
    "borealis-34b": ("Sure! ", ""),
    "cirrus-13b": ("Answer: ", ""),
    "dune-8b": ("Good question. ", ""),
    "ember-3b": ("", " Hope this helps!"),
    "fjord-1b": ("OK. ", " Let me know if you need more."),
}

# One question a line: question | the right answer | a plausible wrong one | why it is right.
FACTS_TABLE = """
What is the capital of Australia? | Canberra | Sydney | Sydney is larger, but Canberra was built as a compromise between Sydney and Melbourne and has been the seat of government since 1927.
What is the capital of Canada? | Ottawa | Toronto | Toronto is the largest city; Ottawa was chosen by Queen Victoria in 1857.
What is the capital of Brazil? | Brasília | Rio de Janeiro | Rio was the capital until 1960, when the purpose-built Brasília replaced it.
What is the capital of Turkey? | Ankara | Istanbul | Istanbul is the biggest city, but Atatürk made Ankara the capital in 1923.
What is the capital of Switzerland? | Bern | Zurich | Switzerland has no de jure capital, but Bern is the federal city where the government sits.
What is the capital of New Zealand? | Wellington | Auckland | Auckland is the largest city; Wellington has been the capital since 1865.
What is the capital of Morocco? | Rabat | Casablanca | Casablanca is the economic centre; the king and parliament sit in Rabat.
What is the capital of Nigeria? | Abuja | Lagos | Lagos was the capital until 1991, when the government moved to the more central Abuja.
How many legs does a spider have? | Eight | Six | Spiders are arachnids, which have eight legs; insects are the ones with six.
Which planet is closest to the Sun? | Mercury | Venus | Mercury orbits at about 58 million km; Venus is second at about 108 million km.
What is the chemical symbol for gold? | Au | Ag | Au comes from the Latin aurum; Ag is silver (argentum).
Which gas do plants take in for photosynthesis? | Carbon dioxide | Oxygen | Plants take in CO2 and release oxygen as a by-product.
At what temperature does water boil at sea level, in °C? | 100 °C | 90 °C | At one standard atmosphere pure water boils at 100 °C; it is lower at altitude.
Who wrote 'Pride and Prejudice'? | Jane Austen | Charlotte Brontë | Jane Austen published it in 1813; Charlotte Brontë wrote 'Jane Eyre'.
What is the largest ocean on Earth? | The Pacific | The Atlantic | The Pacific covers about 165 million km², more than all land combined.
How many bits are in a byte? | Eight | Ten | A byte is 8 bits on every modern machine, which is why it holds values 0 to 255.
What is the hardest natural mineral? | Diamond | Quartz | Diamond is 10 on the Mohs scale; quartz is 7.
In which year did the first person walk on the Moon? | 1969 | 1972 | Neil Armstrong stepped onto the Moon on 20 July 1969; 1972 was the last Apollo landing.
"""
FACTS = [
    tuple(part.strip() for part in line.split("|")) for line in FACTS_TABLE.strip().splitlines()
]

# Arithmetic questions, drawn once from a fixed seed.
PRODUCTS = 36
# Every few prompts all six models answer: with six candidates or more, each promotion adds
# the pairs of responses next to each other in the model's ranking (active learning). The
# other prompts get four answers (all six pairs of them).
ALL_MODELS_EVERY = 12
FEW_MODELS = 4
# Prompts judged as gold checks: a right, explained answer against a confidently wrong one.
GOLD_FACTS = 8


@dataclass(frozen=True)
class Answer:
    text: str
    model: str
    quality: int


@dataclass(frozen=True)
class Question:
    prompt: str
    right: str
    wrong: str
    why: str


def questions() -> list[Question]:
    items = [Question(q, right, wrong, why) for q, right, wrong, why in FACTS]
    rng = random.Random(1)
    products: dict[tuple[int, int], None] = {}
    while len(products) < PRODUCTS:
        products[rng.randint(11, 79), rng.randint(11, 49)] = None
    for a, b in products:
        items.append(
            Question(
                f"What is {a} × {b}?",
                str(a * b),
                str(a * b + random.Random(a * b).choice([-10, 10, 1, -1, 100])),
                f"{a} × {b} = {a} × {b // 10 * 10} + {a} × {b % 10} = "
                f"{a * (b // 10 * 10)} + {a * (b % 10)} = {a * b}.",
            )
        )
    return items


def answer_text(question: Question, level: int) -> str:
    """The answer at one quality level (before the model's manner is applied)."""
    if level == 4:
        return f"**{question.right}.** {question.why}"
    if level == 3:
        return f"{question.right}."
    if level == 2:
        return f"I think it might be {question.right}, but I'm not completely sure about that."
    if level == 1:
        return f"It is {question.wrong}."
    return "That's a great question! There are many things to consider, and it really depends."


def answer(question: Question, model: str, level: int) -> Answer:
    before, after = STYLE[model]
    return Answer(f"{before}{answer_text(question, level)}{after}", model, level)


def level_for(mean: float, rng: random.Random) -> int:
    return max(0, min(LEVELS - 1, round(rng.gauss(mean, 0.9))))


def candidates_rows(seed: int = 7) -> tuple[list[dict], dict[str, int]]:
    """One `candidates` import row per prompt (every source model answers it), and the hidden
    quality of every response text."""
    rng = random.Random(seed)
    rows, quality = [], {}
    for i, question in enumerate(questions()):
        models = SOURCE_MODELS
        if i % ALL_MODELS_EVERY:
            models = sorted(rng.sample(SOURCE_MODELS, FEW_MODELS), key=SOURCE_MODELS.index)
        answers = [answer(question, name, level_for(mean, rng)) for name, mean in models]
        quality.update({a.text: a.quality for a in answers})
        rows.append(
            {
                "id": f"loop-{i + 1}",
                "prompt": question.prompt,
                "responses": [{"text": a.text, "model": a.model} for a in answers],
            }
        )
    return rows, quality


def gold_rows() -> tuple[list[dict], dict[str, int]]:
    """`pair` import rows with a known answer: the best model right against the weakest
    wrong, on reworded prompts (so the gold pairs are pairs of their own)."""
    rows, quality = [], {}
    for i, question in enumerate(questions()[:GOLD_FACTS]):
        good = answer(question, "atlas-70b", 4)
        bad = answer(question, "fjord-1b", 1)
        quality.update({good.text: good.quality, bad.text: bad.quality})
        rows.append(
            {
                "id": f"loop-gold-{i + 1}",
                "prompt": f"Quick check: {question.prompt[0].lower()}{question.prompt[1:]}",
                "response_a": good.text,
                "model_a": good.model,
                "response_b": bad.text,
                "model_b": bad.model,
                "gold": "a",
            }
        )
    return rows, quality


@dataclass(frozen=True)
class SimulatedLabeler:
    username: str
    # How sharply quality differences decide: P(better) = sigmoid(sharpness * gap).
    sharpness: float
    # Share of the labeling this labeler does.
    share: float
    # Median seconds per judgment.
    seconds: float
    careless: bool = False


LABELERS = [
    SimulatedLabeler("ana", 3.0, 0.29, 14.0),
    SimulatedLabeler("ben", 2.6, 0.27, 11.0),
    SimulatedLabeler("chloe", 2.2, 0.23, 18.0),
    SimulatedLabeler("dev", 1.8, 0.13, 9.0),
    # Clicks the left response at once, whatever it says: the quality page flags this.
    SimulatedLabeler("quinn", 0.0, 0.08, 1.6, careless=True),
]


@dataclass(frozen=True)
class Verdict:
    """A simulated judgment: which of the two shown responses (0 = left, 1 = right), or
    "tie" / "both_bad"; a strength for a preference; the time it took."""

    preferred: int | str
    strength: int | None
    time_spent_ms: int


def judge(
    labeler: SimulatedLabeler,
    left: int,
    right: int,
    rng: random.Random,
    strengths: int,
    *,
    pair_key: str = "",
) -> Verdict:
    """How this labeler judges responses of quality `left` and `right` shown in that order.

    People mostly see the same pair the same way twice: the decision is drawn from the
    labeler's and the pair's own seed (`pair_key`, the same whichever side each response is
    on), and only one time in ten from `rng`, so swapped repeats mostly agree.
    """
    millis = int(rng.lognormvariate(math.log(labeler.seconds * 1000), 0.35))
    if labeler.careless:
        return Verdict(0, 1, millis)
    mind = rng if rng.random() < 0.1 else random.Random(f"{labeler.username}:{pair_key}")
    # The draws below are made for the better-quality response first, so the same mind picks
    # the same response whichever side it is shown on.
    swapped = right > left
    better, worse = (right, left) if swapped else (left, right)
    gap = better - worse
    if better <= 1 and mind.random() < 0.4:
        return Verdict("both_bad", None, millis)
    if gap == 0 and mind.random() < 0.35:
        return Verdict("tie", None, millis)
    p_better = 1 / (1 + math.exp(-labeler.sharpness * (gap if gap else 0.0)))
    picks_better = mind.random() < p_better
    strength = max(1, min(strengths, gap + mind.choice([-1, 0, 0, 1])))
    preferred = 0 if picks_better != swapped else 1
    return Verdict(preferred, strength, millis)
