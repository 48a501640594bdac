"""Fine-tuning: training data from incidents and ratings, LoRA jobs run as subprocesses."""
