"""Training our style networks: data, losses and the resumable trainer."""
