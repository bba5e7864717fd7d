"""Where the training code lived before it moved to ``servewell.training`` (and its
siblings): kept only so that models trained then still load (see ``features``)."""
