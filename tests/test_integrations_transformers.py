"""MixupTrainer mixes a Hugging Face model's hidden states as the hand-written loop does (the same losses and plans
for the same batches and seed), refuses token ids at the input naming the embedding layer, and a run resumed from
its checkpoint draws the unbroken run's plans. A tiny BERT built from a config: nothing is downloaded."""
import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")
from mixsuite.integrations.transformers import MixupTrainer  # noqa: E402
from mixsuite.mixing import ManifoldMixup  # noqa: E402
from mixsuite.mixing.hooks import MixingLayerError  # noqa: E402

LAYERS = ["bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1"]


def tiny_bert():
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=3,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return transformers.BertForSequenceClassification(config)


def dataset(n=32):
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, 40, (n, 10), generator=g)
    return [{"input_ids": ids[i], "labels": int(ids[i, 0] % 3)} for i in range(n)]


class Recording(MixupTrainer):
    """Keeps each training step's batch, loss and plan (layer, lambda) for the comparison."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        batch = {k: v.clone() for k, v in inputs.items()}
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if model.training:
            self.seen.append((batch, loss.item(), (self.mix_plan.layer, float(self.mix_plan.lam))))
        return loss


def trainer(tmp_path, steps, layers=LAYERS, save_steps=None):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=8, learning_rate=0.1, optim="sgd",
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=0.0, use_cpu=True,
        report_to="none", disable_tqdm=True, logging_strategy="no", seed=0,
        save_strategy="steps" if save_steps else "no", save_steps=save_steps or 500)
    t = Recording(model=tiny_bert(), args=args, train_dataset=dataset(), mix_layers=layers, mix_alpha=2.0, mix_seed=5)
    t.seen = []
    return t


def test_mixup_trainer_trains_as_the_hand_written_loop(tmp_path):
    t = trainer(tmp_path, steps=4)
    t.train()
    model = tiny_bert()
    mixer = ManifoldMixup(model, layers=LAYERS, alpha=2.0, generator=torch.Generator().manual_seed(5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for batch, loss_seen, plan_seen in t.seen:
        labels = batch.pop("labels")
        with mixer.step(len(labels)) as plan:
            out = model(**batch)
        loss = plan.mix_loss(F.cross_entropy, out.logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert (plan.layer, float(plan.lam)) == plan_seen
        assert loss.item() == pytest.approx(loss_seen, rel=1e-5)
    assert len(t.seen) == 4 and len({p for _, _, p in t.seen}) == 4


def test_token_ids_are_refused_at_the_input_with_the_embedding_named(tmp_path):
    t = MixupTrainer(model=tiny_bert(), args=transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=1, use_cpu=True, report_to="none", disable_tqdm=True,
        per_device_train_batch_size=8), train_dataset=dataset(), mix_layers=["input"])
    with pytest.raises(MixingLayerError, match="embeddings"):
        t.train()


def test_a_resumed_run_draws_the_unbroken_runs_plans(tmp_path):
    unbroken = trainer(tmp_path / "a", steps=4)
    unbroken.train()
    first = trainer(tmp_path / "b", steps=4, save_steps=2)
    first.train()
    resumed = trainer(tmp_path / "b", steps=4)
    resumed.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-2"))
    assert [p for _, _, p in resumed.seen] == [p for _, _, p in unbroken.seen[2:]]
    assert [l for _, l, _ in resumed.seen] == pytest.approx([l for _, l, _ in unbroken.seen[2:]], rel=1e-5)
