"""Task 1's stand-in: sources differ in image style and phrasing, answers stay grounded."""

import numpy as np

from f3ocus_ray.data import load_dataset, synthesize
from f3ocus_ray.data.synthetic.domain_gap import DOMAIN_GAP_SOURCES, generate_domain_gap


def test_five_sources_with_their_own_style_and_phrasing(tmp_path):
    samples = list(generate_domain_gap(seed=0, samples_per_client=30, image_size=32))
    names = [s.name for s in DOMAIN_GAP_SOURCES]
    assert sorted({s.client for s in samples}) == sorted(names)
    by_source = {n: [s for s in samples if s.client == n] for n in names}
    assert all(len(v) == 30 and sum(s.split == "test" for s in v) == 6 for v in by_source.values())
    # phrasing: each source's questions carry its own form, so no two sources share a question
    questions = {n: {s.question for s in v} for n, v in by_source.items()}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not questions[a] & questions[b], (a, b)
    # style: image statistics differ between sources (mean intensity or noise)
    stats = {
        n: (np.mean([s.image.mean() for s in v]), np.mean([s.image.std() for s in v]))
        for n, v in by_source.items()
    }
    means = sorted(m for m, _ in stats.values())
    assert means[-1] - means[0] > 10, stats

    again = list(generate_domain_gap(seed=0, samples_per_client=30, image_size=32))
    assert all(
        (a.image == b.image).all() and a.question == b.question
        for a, b in zip(samples, again, strict=True)
    )

    path = synthesize(tmp_path / "t1", task="domain_gap", samples_per_client=10, image_size=16)
    ds = load_dataset(path, image_size=16)
    assert ds.task == "vqa" and ds.clients == names
