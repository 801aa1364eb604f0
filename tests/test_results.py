"""GenreAnalysis as a value: equality and serialisation."""

import numpy as np
import pytest
from conftest import make_analysis


def test_analyses_compare_by_value():
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), size=5)
    first, same = make_analysis(probabilities), make_analysis(probabilities.copy())
    assert first == same and not (first != same)
    other = probabilities.copy()
    other[0, [0, 1]] = other[0, [1, 0]]
    assert first != make_analysis(other)
    assert first != make_analysis(probabilities, source="other.wav")
    assert first != make_analysis(probabilities[:4])
    assert first != "song.wav"


def test_analyses_are_not_hashable():
    """Their arrays are mutable, so a hash could not stay true to the value."""
    with pytest.raises(TypeError):
        hash(make_analysis(np.full((2, 10), 0.1)))
