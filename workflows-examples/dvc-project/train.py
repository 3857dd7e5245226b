"""Train a small classifier on a dataset that ships with scikit-learn; DVC runs this as the `train` stage."""

import json
import os

import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_curve
from sklearn.model_selection import train_test_split

params = yaml.safe_load(open("params.yaml"))
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=params["data"]["test_size"],
                                                    random_state=params["train"]["seed"])
model = RandomForestClassifier(n_estimators=params["train"]["n_estimators"], max_depth=params["train"]["max_depth"],
                               random_state=params["train"]["seed"]).fit(X_train, y_train)
predicted = model.predict(X_test)
scores = model.predict_proba(X_test)[:, 1]
os.makedirs("eval", exist_ok=True)
with open("eval/metrics.json", "w") as fh:
    json.dump({"accuracy": round(accuracy_score(y_test, predicted), 4), "f1": round(f1_score(y_test, predicted), 4)}, fh)
fpr, tpr, _ = roc_curve(y_test, scores)
with open("eval/roc.json", "w") as fh:
    json.dump({"roc": [{"fpr": round(float(f), 4), "tpr": round(float(t), 4)} for f, t in zip(fpr, tpr)]}, fh)
print(open("eval/metrics.json").read())
