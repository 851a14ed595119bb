"""Every command's --help reads as written: argparse %-formats argument help strings
(so they escape a percent sign as %%) but not descriptions without %(prog)s."""

from __future__ import annotations

from explorer.cli.main import build_parser


def test_no_help_prints_a_doubled_percent_sign():
    parser, subparsers = build_parser()
    assert subparsers, "no subcommands found"
    for name, sub in {"explorer": parser, **subparsers}.items():
        text = sub.format_help()
        assert "%%" not in text, (name, text[text.index("%%") - 60:text.index("%%") + 10])


def test_reproduce_help_says_95_percent_interval():
    _, subparsers = build_parser()
    text = " ".join(subparsers["reproduce"].format_help().split())
    assert "ours (mean and 95% interval)" in text
    assert "report means, 95% t-intervals" in text
