"""Adapters for the frameworks people train with, each an optional extra of mixsuite (docs/integrations.md):

- `mixsuite.integrations.lightning`: a Lightning callback that mixes a LightningModule at named layers (`lightning`);
- `mixsuite.integrations.transformers`: a Hugging Face `Trainer` that mixes hidden states at named layers (`hf`).

Accelerate needs no adapter: a Mixer has `state_dict`/`load_state_dict`, so `accelerator.register_for_checkpointing`
takes it as it is (docs/integrations.md).
"""
