"""Tables, plots and HTML reports: the only package that imports matplotlib."""

from fedfleet.report.html import HtmlReport

__all__ = ["HtmlReport"]
