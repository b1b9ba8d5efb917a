"""The docs (docs/*.md), shipped as package data (hubensemble.docs): hubensemble.docfiles."""
