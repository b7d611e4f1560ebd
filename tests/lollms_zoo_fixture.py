"""Writes a personality zoo in the standard LOLLMS layout (<category>/<personality>/config.yaml) with the
variants real files use: category as a list, conditioning as a list of lines, dependencies on a
config-only personality, anti_prompts, comments and odd quoting, older scripts/processor.py files."""

from __future__ import annotations

from pathlib import Path

CATEGORIES = ("coding", "writing", "science", "fun", "language")

TEMPLATES = (
    # plain, block scalar, comments
    '''# LOLLMS personality
author: "zoo author {i}"
version: 1.{i}
category: {category}
name: Persona {i}
personality_description: |
  Personality number {i} of the {category} category.
personality_conditioning: '### Instruction: You are persona {i}.'
user_message_prefix: '### User:'
ai_message_prefix: "### Assistant:"
link_text: "\\n"
welcome_message: 'Welcome, I am persona {i}.'
dependencies: []
anti_prompts: ["###User", "###"]
model_temperature: 0.6
model_n_predicts: 2
model_top_k: 50
model_top_p: 0.9
model_repeat_penalty: 1.1
model_repeat_last_n: 40
disclaimer: ''
''',
    # category as a list, conditioning as a list of lines, a dependency, older processor script
    '''author: ParisNeo
version: "2.0"
category: [{category}, extra_tag]
language: english
name: 'List persona {i}'
personality_description: A persona whose texts are lists.
personality_conditioning:
  - "You are list persona {i}."
  - "Answer in one line."
welcome_message:
  - "Hello!"
  - "How can I help?"
dependencies:
  - lollms-not-installed-package-{i}
anti_prompts: STOP
model_temperature: 0.2
model_n_predicts: 128
''',
)


def write_lollms_zoo(root: Path, count: int) -> list[str]:
    """Write ``count`` personalities below ``root``; returns their expected names (``category/folder``)."""
    names: list[str] = []
    for i in range(count):
        category = CATEGORIES[i % len(CATEGORIES)]
        folder = f"persona_{i // len(CATEGORIES)}"  # the same folder name recurs in every category
        target = root / category / folder
        target.mkdir(parents=True)
        template = TEMPLATES[i % len(TEMPLATES)]
        (target / "config.yaml").write_text(template.format(i=i, category=category), encoding="utf-8")
        (target / "assets").mkdir()
        if i % len(TEMPLATES) == 1:
            (target / "scripts").mkdir()
            (target / "scripts" / "processor.py").write_text("from lollms.personality import APScript\n")
        names.append(f"{category}/{folder}")
    return names
