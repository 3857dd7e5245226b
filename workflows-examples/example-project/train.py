"""Example training script: a random forest on scikit-learn's bundled breast-cancer data set.

Writes metrics.json, confusion_matrix.png (an image), confusion_matrix.csv and importance.csv (data
files the report renders as plots) so every part of a cml-action report has something to show.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    ConfusionMatrixDisplay,
    accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split  # noqa: E402


def main() -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=params["data"]["test_size"], random_state=params["data"]["seed"]
    )
    model = RandomForestClassifier(random_state=params["data"]["seed"], n_jobs=1, **params["model"])
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    scores = model.predict_proba(x_test)[:, 1]
    print(f"trained on {len(x_train)} rows, tested on {len(x_test)}")

    metrics = {
        "accuracy": round(accuracy_score(y_test, predicted), 4),
        "f1": round(f1_score(y_test, predicted), 4),
        "precision": round(precision_score(y_test, predicted), 4),
        "recall": round(recall_score(y_test, predicted), 4),
        "roc_auc": round(roc_auc_score(y_test, scores), 4),
    }
    Path("metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics))

    names = list(data.target_names)
    with open("confusion_matrix.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        writer.writerows((names[a], names[p]) for a, p in zip(y_test, predicted))

    ranked = sorted(zip(data.feature_names, model.feature_importances_), key=lambda t: -t[1])[:10]
    with open("importance.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["feature", "importance"])
        writer.writerows((name, round(value, 5)) for name, value in ranked)

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ConfusionMatrixDisplay.from_predictions(y_test, predicted, display_labels=names, ax=ax, colorbar=False)
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    fig.savefig("confusion_matrix.png", metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    main()
