"""The prediction sets scored by the official VQA evaluation script for
tests/eval/data/vqa_official_outputs.json (see tests/eval/data/README.md):
per question, the k-th prediction built from its human answers."""


def predictions(answers: list[str], consensus: str) -> list[str]:
    a0 = answers[0]
    return [consensus, a0, answers[len(answers) // 2], "The " + a0.upper() + ".", a0 + "?",
            " " + a0 + "\n", "yes", "no", "two", "2", "a dog", "dont know", a0.replace(" ", ", "),
            "10,000", "3.5", "it's " + a0, "(" + a0 + ")"]
