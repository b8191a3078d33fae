"""Manifold Mixup of a Hugging Face model's hidden states with mixsuite's MixupTrainer (needs the hf extra).

    python examples/hf_mixup.py --steps 200
    python examples/hf_mixup.py --smoke

A small BERT built from a config (nothing downloaded) learns to tell whether a token sequence holds more even than
odd ids; the hidden states after the embeddings and after each encoder layer are the set S. Token ids cannot be
interpolated, so S starts at `bert.embeddings`, not at `input`.
"""
import argparse
import tempfile

import torch
import transformers

from mixsuite.integrations.transformers import MixupTrainer

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--smoke", action="store_true", help="4 steps")
args = parser.parse_args()
steps = 4 if args.smoke else args.steps
transformers.set_seed(0)


def sequences(n):
    ids = torch.randint(1, 100, (n, 16))
    labels = ((ids % 2 == 0).sum(1) > 8).long()
    return [{"input_ids": ids[i], "labels": int(labels[i])} for i in range(n)]


config = transformers.BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=128, max_position_embeddings=32, num_labels=2)
model = transformers.BertForSequenceClassification(config)
with tempfile.TemporaryDirectory() as out:
    targs = transformers.TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size=32,
                                           learning_rate=1e-3, use_cpu=True, report_to="none", save_strategy="no",
                                           eval_strategy="no", disable_tqdm=True, logging_steps=max(1, steps // 4))
    trainer = MixupTrainer(model=model, args=targs, train_dataset=sequences(2048), eval_dataset=sequences(256),
                           mix_layers=["bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1"],
                           mix_alpha=2.0, mix_seed=0)
    trainer.train()
    print(f"eval_loss: {trainer.evaluate()['eval_loss']:.4f}")
