"""Lessons: an ordered list of stops, each of which sets the page and may ask the class one question
before it reveals the model's own answer.

`format` reads a lesson file (TOML; the format is documented there) into a `Lesson`, and says
which line is wrong when one is; `questions` computes each kind of question's right answer from
the live trace; `panel` is the Streamlit side (the lesson on the page, alone or in a class).
The lessons that ship are the `.toml` files of this folder.
"""
