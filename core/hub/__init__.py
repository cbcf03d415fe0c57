"""The Hugging Face Hub: deploy the app as a Space (space.py), push a checkpoint as a model repo
(push.py), and the model cards both carry (cards.py); staging.py is what they share. The engine
never imports this package: the GPU machines that train the zoo have no huggingface_hub."""
