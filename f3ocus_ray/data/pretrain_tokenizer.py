"""The pretrained checkpoint's tokenizer: sub-word WordPiece over the corpus text plus general
English sub-word coverage, fixed at pretraining (fine-tuning reads it, never retrains it).

The general pieces are frequent English words, every two-letter pair and a list of common English prefixes, suffixes
and Greek/Latin roots of everyday English (no medical
terms); with them a word the corpus never had ("cardiomegaly") splits into a few
sub-words, never into [UNK] (the characters are in the vocabulary too). The vocabulary is
chosen deterministically (see :func:`f3ocus_ray.data.tokenizer.train_tokenizer`): the trainers
of `tokenizers` break ties between equally frequent merges differently from run to run, which
would change the checkpoint's content hash.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from .tokenizer import SPECIAL_TOKENS, QuestionTokenizer, train_tokenizer

__all__ = ["GENERAL_PIECES", "min_vocab_size", "train_pretrain_tokenizer"]

_AFFIXES = """
anti auto bi co con com de dis en em ex extra hyper hypo in im il ir inter intra macro micro
mid mis mono multi non over para poly post pre pro re semi sub super tele trans tri ultra un
under uni able ible al ial ed er est ful ic ical ing ion tion sion ation ition ity ive ative
less ly ment ness ous ious eous ism ist ize ise ance ence ant ent ary ory ure age ate ify ward
ship hood ia ology logy graph graphy scope scopy gram meter metry
"""
_ROOTS = """
bio geo hydro therm photo chrom cell graph phys chem morph vas vis spec struct form port duct
tract press ject rupt spir vert mit mot cap fer gen log path phon cycl dict scrib norm sever
mild acute chron benign left right upper lower inner outer later medi dist proxim central
vol dens liqu solid grow spread struct surface layer blood bone heart lung skin eye tissue
"""
# frequent English words, kept whole
_WORDS = """
the of and to in is was are were be been it this that these those for on with as by at from or
an not no yes all any some each other more most less than then there here when where which who
what how why can could will would should may might do does did has have had seen shown used
see show use type kind part side area region look looks looking image picture photo view
scan found find present absent visible large small big little high low long short wide
narrow thick thin bright dark light clear level stage grade sign signs body organ normal
"""
GENERAL_PIECES: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            *(a + b for a in string.ascii_lowercase for b in string.ascii_lowercase),
            *string.punctuation,
            *_WORDS.split(),
            *_AFFIXES.split(),
            *_ROOTS.split(),
        ]
    )
)


def min_vocab_size() -> int:
    """The vocabulary before any corpus word: special tokens, characters and general pieces,
    each word-initial and as a ``##`` continuation (the corpus's characters are among them)."""
    chars = set(string.ascii_lowercase + string.digits + string.punctuation)
    return len(SPECIAL_TOKENS) + 2 * len(chars | set(GENERAL_PIECES))


def train_pretrain_tokenizer(texts: Iterable[str], vocab_size: int) -> QuestionTokenizer:
    """The WordPiece tokenizer of the pretraining corpus `texts` with the general pieces."""
    return train_tokenizer(texts, vocab_size=vocab_size, pieces=GENERAL_PIECES)
