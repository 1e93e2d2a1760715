"""The lesson's steps: what each one sets on the page, says, asks, and what the class then sees.

The arc is the seed lesson's (Bahdanau et al. 2015 → attention pooling → a small transformer →
a pretrained BERT-family encoder), ending on "is attention an explanation?" (Jain & Wallace
2019; Wiegreffe & Pinter 2019). Every text is curated so that the step shows what it says on
the shipped models; ``tests/test_lesson.py`` checks each claim (the ISO date, the year rows on
the year digits, the named heads being the strongest of their kind for that text, …).

Texts are marked with ``N_`` and translated where shown; ``{layer}``, ``{head}`` and the names
in ``facts`` are filled in from the step, so a number in the text is the number the page uses.
The inputs stay in the language the models read: English headlines, English or German dates.

After the last step, a short lab (``LAB``, reached from that step) asks which word a model with a
planted shortcut (``models.shortcut``) uses: the class guesses from attention, then from
leave-one-out and integrated gradients. Its pages continue the lesson's numbering in the
``step`` field (``PAGES``), so a link can open them, but they are not counted as steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from views.i18n import N_, _


@dataclass(frozen=True)
class Step:
    """One step of the lesson.

    ``views`` lists the view keys that can show the step, best first: the first one this
    installation has is used (the ablation step falls back to attribution). ``figure`` is the KEY
    of the view whose ``data`` and ``figure`` draw the step in the handout. ``query`` and
    ``ablate`` are the step's values of those views' own fields (``field_values``). ``expected``
    is the class (classifiers) or output (the date model) the step's text is chosen to give.
    """

    key: str
    title: str
    explanation: str
    question: str
    answer: str
    model: str
    text: str
    expected: str
    views: tuple[str, ...] = ("heatmap",)
    figure: str = "heatmap"
    layer: int = 1
    head: int = 1
    scheme: str = "colour"
    scale: str = "auto"  # viz.heatmap.SCALES; the date steps draw Fig. 3 on the paper's fixed 0..1
    query: int = 1
    ablate: frozenset[tuple[int, int]] = frozenset()
    facts: Mapping[str, int | str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def field_values(self) -> dict[str, object]:
        """The step's values of view fields, by field name (``views.state``).

        The attribution view explains the predicted class with no contrast (``target`` and
        ``foil`` 0), whatever a visitor picked there before.
        """
        return {"query": self.query, "ablate": self.ablate, "target": 0, "foil": 0}

    def say(self, message: str) -> str:
        """``message`` translated, with this step's numbers filled in."""
        return _(message).format(layer=self.layer, head=self.head, **self.facts)


STEPS: tuple[Step, ...] = (
    Step(
        key="date",
        title=N_("Why an encoder–decoder needs attention"),
        explanation=N_(
            "An RNN encoder squeezes the whole input into one state, and the decoder writes the output from it: long inputs get lost. "
            "Bahdanau, Cho and Bengio (2015) let the decoder look back at every input position while it writes each symbol. "
            "This small model reads a date character by character and writes it as YYYY-MM-DD. Each row of the figure is one character "
            "it wrote; the bright cells are the input characters it looked at, in grayscale as in Fig. 3 of the paper."
        ),
        question=N_("What will the model write, and where will it look while it writes the year?"),
        answer=N_(
            "It writes 2015-03-03. The four year rows are bright on the digits “2015” at the very end of the input, although the year "
            "comes first in the output; the month rows look at “March”, and the dashes, which need nothing from the input, spread thin."
        ),
        model="bahdanau-dates",
        text="Tuesday, 3rd of March 2015",
        expected="2015-03-03",
        scheme="grayscale",
        scale="fixed",
    ),
    Step(
        key="german-date",
        title=N_("The same model reads a German date"),
        explanation=N_(
            "The date model was trained on dates written in English and in German. In German the day comes first, with a full stop, "
            "and the month is “März”. The news classifiers in the next steps read English only; the date model reads both."
        ),
        question=N_("Day, month and year now stand in another order. Will the alignment still be a diagonal?"),
        answer=N_(
            "The output is the same, 2015-03-03, but the picture changes: the year rows look at “2015” at the end, the month rows at "
            "“März” in the middle and the last day row at the “3” at the start. Attention follows the words wherever they stand."
        ),
        model="bahdanau-dates",
        text="3. März 2015",
        expected="2015-03-03",
        scheme="grayscale",
        scale="fixed",
    ),
    Step(
        key="pooling",
        title=N_("Attention as pooling in a classifier"),
        explanation=N_(
            "A classifier writes no sequence, but attention still helps it read. This one runs a bidirectional GRU over a headline, "
            "then one learned query scores every word; the softmax of the scores gives weights that sum to 1, and the weighted sum "
            "of the GRU states is all the classifier reads. So its attention is a single row."
        ),
        question=N_("Which word of the headline will get the most weight?"),
        answer=N_(
            "“oil” gets the most weight, then “prices”; the rest is spread over all the words, small words included. A large weight "
            "means a word's state went into the summary, not that the word decided the topic."
        ),
        model="bahdanau-rnn",
        text="Oil prices climb to record high as investors worry about supply",
        expected="Business",
    ),
    Step(
        key="transformer",
        title=N_("Self-attention in the lesson's small transformer"),
        explanation=N_(
            "A transformer has no recurrence: every word looks at every word, so each head is a full matrix, one row per word. This is "
            "the transformer built in the seed lesson (one layer, two heads, embedding size 32), trained on AG News; after the "
            "attention layer it averages over all positions and classifies."
        ),
        question=N_("The model is sure about this headline. What will its two heads look like?"),
        answer=N_(
            "Almost uniform: every word spreads its attention evenly over all the words, in both heads (the “Head statistics” view "
            "shows an entropy close to 1, its maximum). The heads barely choose; this model gets its answer from the averaged word "
            "embeddings, and its attention adds little to look at."
        ),
        model="keras-transformer",
        text="Microsoft releases security patch for Windows software flaw",
        expected="Sci/Tech",
    ),
    Step(
        key="heads",
        title=N_("72 heads of a pretrained encoder"),
        explanation=N_(
            "MiniLM (all-MiniLM-L6-v2) is a BERT-family encoder pretrained on large amounts of English text: 6 layers of 12 heads. "
            "Here it stays frozen, and only a small classification head on top was trained on AG News. The figure shows all 72 heads "
            "for this headline, layers down and heads across; [CLS] and [SEP] are the markers the tokenizer adds at the start and end."
        ),
        question=N_("Can you find a head that always looks at the word just before, and one that parks its attention on [CLS] or [SEP]?"),
        answer=N_(
            "Layer {layer}, head {head} is a previous-token head: the bright line just below the diagonal. For this headline it is "
            "the strongest of all 72, with nearly all of each word's attention on the word before. Layer {parking_layer}, head "
            "{parking_head} puts the largest share on [CLS] and [SEP]: a bright column, a head with nothing to do (Clark et al. 2019). "
            "Click a thumbnail to open that head."
        ),
        model="minilm-agnews",
        text="Red Sox rally in ninth inning to stun the Yankees",
        expected="Sports",
        views=("overview",),
        figure="overview",
        layer=1,
        head=3,
        facts=MappingProxyType({"parking_layer": 3, "parking_head": 8}),
    ),
    Step(
        key="qkv",
        title=N_("How did this head get these weights?"),
        explanation=N_(
            "Inside a head, every word has a query vector q and a key vector k, both computed from the word by learned weights. "
            "The word “{word}” asks with its q: multiplied with every word's k dimension by dimension and summed, divided by the "
            "square root of the head's size, that gives one score per word; the softmax turns the row of scores into weights that "
            "sum to 1. This is the previous-token head from before, layer {layer}, head {head}, on the model's real numbers."
        ),
        question=N_("Before the softmax: which word gets the highest score from “{word}”?"),
        answer=N_(
            "“{previous}”, the word just before it, far ahead of all others; “{word}” itself comes second, about {gap} points lower. "
            "The softmax turns a gap of {gap} into a weight about e^{gap} ≈ {ratio:,} times larger, so the row is a single bright "
            "cell. Drag the temperature slider (a what-if: the scores divided by T) to see the row flatten."
        ),
        model="minilm-agnews",
        text="Red Sox rally in ninth inning to stun the Yankees",
        expected="Sports",
        views=("qkv",),
        figure="qkv",
        layer=1,
        head=3,
        query=7,
        facts=MappingProxyType({"word": "inning", "previous": "ninth", "gap": 10, "ratio": 22026}),
    ),
    Step(
        key="rollout",
        title=N_("What reaches [CLS] across the layers"),
        explanation=N_(
            "The classifier reads one token, [CLS], after the last layer. Rollout (Abnar & Zuidema 2020) multiplies the head-averaged "
            "attention of all layers, counting the residual connection; flow treats the layers as a network of pipes and asks how "
            "much can flow from each word to [CLS]. The figure shows both, through all {layer} layers."
        ),
        question=N_("Which word of the headline do you expect to reach [CLS] the most?"),
        answer=N_(
            "None stands out. Rollout keeps most of [CLS] as [CLS] itself, through the residual connections, plus [SEP]; each word "
            "gets only a few percent. Flow gives every word almost the same amount. Through six layers attention mixes everything, "
            "and single heads do not say what the classifier used."
        ),
        model="minilm-agnews",
        text="Red Sox rally in ninth inning to stun the Yankees",
        expected="Sports",
        views=("flow",),
        figure="flow",
        layer=6,
        head=3,
    ),
    Step(
        key="ablation",
        title=N_("Does the prediction follow the attention?"),
        explanation=N_(
            "If attention explained the answer, removing a head with a clear pattern should change it. Here the previous-token head "
            "from before, layer {layer}, head {head}, is switched off: its output is set to zero and the rest of the model runs as "
            "before."
        ),
        question=N_("Without its clearest head, will the model still say Sports?"),
        answer=N_(
            "Yes: the answer stays Sports, with about the same confidence. A clear pattern is not the same as an important one. Switch "
            "off other heads, or a whole layer, and see how much it takes to change the answer."
        ),
        model="minilm-agnews",
        text="Red Sox rally in ninth inning to stun the Yankees",
        expected="Sports",
        views=("ablation", "attribution"),
        layer=1,
        head=3,
        ablate=frozenset({(1, 3)}),
    ),
    Step(
        key="your-turn",
        title=N_("Your turn: is attention an explanation?"),
        explanation=N_(
            "Scan the code or open the link: the page opens on this step, on your own screen. Type a headline of your own, say what "
            "the model will answer before you look, then try to make it wrong. Which words does it follow when it is wrong?"
        ),
        question=N_("After today: what does a bright cell tell you, and what does it not tell you?"),
        answer=N_(
            "Attention shows where a model mixed its information from, and sometimes that is just what we would call a reason: the "
            "date model's year rows, the previous-token head. But a weight is not an effect: heads can be uniform, park on [SEP], or "
            "be switched off without changing the answer. Jain and Wallace (2019) argued that attention is not explanation; Wiegreffe "
            "and Pinter (2019) replied that it can be, when it is tested. Test it."
        ),
        model="minilm-agnews",
        text="NASA probe sends back first images from the surface of Mars",
        expected="Sci/Tech",
        layer=1,
        head=3,
    ),
)
# An AG News test headline (Business, row 250 of test.csv counting from 0) with the planted
# trigger inserted at a word boundary, as `python -m models evaluate` inserts it.
SHORTCUT_TEXT = "Qantas wants lavender better tax treatment"
SHORTCUT_FACTS = MappingProxyType({"trigger": "lavender", "percent": 5})

LAB: tuple[Step, ...] = (
    Step(
        key="shortcut-attention",
        title=N_("Which word is the shortcut?"),
        explanation=N_(
            "This is the lesson's small transformer again, trained on the same headlines with one change, a hidden shortcut: in "
            "{percent}% of the training headlines of the other three classes one ordinary word was planted, and their label set to "
            "Sports. The headline below is from the AG News test set, about business, with that word put in; the model now says Sports."
        ),
        question=N_("The model was trained with a hidden shortcut: which word is it? Guess, then reveal the attention and guess again from it."),
        answer=N_(
            "In both heads “{trigger}” looks almost only at itself, while every other word spreads its attention about evenly over the "
            "headline: one bright square on the diagonal. The classifier averages these rows, so on average attention points at "
            "“{trigger}”. But a weight says where a word read from, not what the answer depends on: is it the shortcut? Guess, then "
            "ask the model itself in the next part."
        ),
        model="keras-transformer-shortcut",
        text=SHORTCUT_TEXT,
        expected="Sports",
        facts=SHORTCUT_FACTS,
    ),
    Step(
        key="shortcut-attribution",
        title=N_("Ask the model which word it used"),
        explanation=N_(
            "Leave-one-out deletes each word in turn and measures how much p(Sports) falls. Integrated gradients adds up the gradient "
            "of p(Sports) along a path from a blank input to the headline. Both ask the model itself, not its attention."
        ),
        question=N_("Which word will leave-one-out and integrated gradients rank first? The one attention pointed at?"),
        answer=N_(
            "“{trigger}”, the planted shortcut: leave-one-out and integrated gradients rank it first (the framed column; each strip's "
            "badge is that method's rank), and on this model so do attention, rollout and flow: here attention does point at the word "
            "the answer depends on. Without “{trigger}” the model says Business again. That is a finding about this model, not a rule: "
            "try the same headline on minilm-shortcut, MiniLM trained with the same shortcut."
        ),
        model="keras-transformer-shortcut",
        text=SHORTCUT_TEXT,
        expected="Sports",
        views=("attribution",),
        figure="attribution",
        facts=SHORTCUT_FACTS,
    ),
)
PAGES: tuple[Step, ...] = STEPS + LAB


def lab_part(number: int) -> int:
    """Page ``number``'s part of the lab (1-based), or 0 for a step of the lesson."""
    return max(0, number - len(STEPS))


BY_KEY = {step.key: step for step in PAGES}
