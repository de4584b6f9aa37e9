"""Training and calibrating the reader (the scripts in `scripts/` drive it): the SQuAD article
splits, the yes/no sets, calibration on the tune articles and the model card. The product does
not import it."""
