"""Sample access logs of every supported format, and the generator of realistic traffic."""
