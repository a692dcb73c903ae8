"""Thin command-line front end: parse, load config, call the library, render."""
