from gan_lab.errors import first_line


def test_first_line_of_a_multi_line_message():
    assert first_line("\n  \nno such file\nTraceback ...") == "no such file"


def test_first_line_of_empty_text_is_empty():
    assert first_line("") == ""
    assert first_line(ValueError()) == ""


def test_first_line_of_an_exception():
    assert first_line(OSError("disk full\nmore")) == "disk full"
