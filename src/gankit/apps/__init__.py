"""Applications built on the API: experiments that train, sample and score in one command
(`augment_eval`: does a low-data GAN's synthetic data help a classifier?)."""
