"""The training loops every algorithm shares: pre-training, the fine-tuning iteration loop, evaluation."""
