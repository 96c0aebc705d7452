"""The ``hdc`` command line: ``hdc info``, ``hdc demo``, ``hdc bench``, ``hdc train``, ``hdc compare``."""
