"""Stage 2: frame features (Kaldi MFCC, frozen pretrained encoders), their cache, and padded batches."""
