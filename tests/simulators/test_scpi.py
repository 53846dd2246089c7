"""The SCPI engine on a tiny test instrument: parsing rules, common commands, errors."""

from __future__ import annotations

import pytest

from labrig.simulators.scpi import (
    CommandTree,
    NoReply,
    SCPIError,
    SCPIInstrument,
    nr3,
    one_param,
    parse_bool,
    parse_choice,
    parse_number,
    split_outside_quotes,
    split_params,
)


class Toy(SCPIInstrument):
    """A one-channel source: just enough tree to exercise the engine."""

    def __init__(self) -> None:
        super().__init__()
        self.reset()

    def idn(self) -> str:
        return "ACME,TOY,1,0.1"

    def reset(self) -> None:
        self.level = 0.0
        self.mode = "FIX"
        self.on = False
        self.values = [0.0]

    def _build_tree(self) -> None:
        def set_level(args: list[str]) -> None:
            self.level = parse_number(
                one_param(args),
                low=-21,
                high=21,
                default=0.0,
                current=self.level,
                steps=[-21, 0, 21],
            )

        def set_mode(args: list[str]) -> None:
            self.mode = parse_choice(one_param(args), ("FIXed", "SWEep", "LIST"))

        def set_list(args: list[str]) -> None:
            self.values = [parse_number(a, low=-21, high=21) for a in args]

        def set_on(args: list[str]) -> None:
            self.on = parse_bool(one_param(args))

        t = self.tree
        t.add(
            ":SOURce:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
            set=set_level,
            query=lambda _: nr3(self.level),
        )
        t.add(":SOURce:VOLTage:MODE", set=set_mode, query=lambda _: self.mode)
        t.add(
            ":SOURce:LIST:VOLTage",
            set=set_list,
            query=lambda _: ",".join(nr3(v) for v in self.values),
        )
        t.add(":OUTPut[:STATe]", set=set_on, query=lambda _: str(int(self.on)))
        t.add("[:SENSe]:CURRent:NPLCycles", set=lambda a: None, query=lambda _: "1")


@pytest.fixture
def toy() -> Toy:
    return Toy()


def errors(inst: SCPIInstrument) -> list[str]:
    out = []
    while True:
        e = inst.handle(":SYST:ERR?")
        if e == '0,"No error"':
            return out
        out.append(e)


@pytest.mark.parametrize(
    "command",
    [
        ":SOUR:VOLT 1.5",
        ":SOURCE:VOLTAGE 1.5",
        ":source:voltage:level 1.5",
        "SOUR:VOLT:LEV:IMM:AMPL 1.5",
        ":SOURce:VOLTage:LEVel:IMMediate:AMPLitude 1.5",
        ":SOUR1:VOLT 1.5",
        ":SOUR:VOLT 15E-1",
        ":SOUR:VOLT\t1.5",
    ],
)
def test_short_long_optional_and_case_forms_are_the_same_command(toy: Toy, command: str) -> None:
    toy.handle(command)
    assert toy.level == 1.5
    assert toy.handle(":SOUR:VOLT?") == "+1.500000E+00"
    assert errors(toy) == []


@pytest.mark.parametrize(
    "command", [":SOURC:VOLT 1", ":SOU:VOLT 1", ":SOUR:VOLTA 1", ":SOUR2:VOLT 1"]
)
def test_neither_short_nor_long_form_is_an_undefined_header(toy: Toy, command: str) -> None:
    toy.handle(command)
    assert toy.level == 0.0
    assert errors(toy) == ['-113,"Undefined header"']


def test_chained_commands_follow_the_relative_path_rule(toy: Toy) -> None:
    reply = toy.handle(":SOUR:VOLT:MODE LIST;LEV 2;:OUTP ON;:SOUR:VOLT:LEV?;MODE?")
    assert (toy.mode, toy.level, toy.on) == ("LIST", 2.0, True)
    assert reply == "+2.000000E+00;LIST"
    # relative to :OUTP, ``VOLT`` is undefined: the real instrument says -113
    toy.handle(":OUTP OFF;VOLT 3")
    assert toy.level == 2.0 and not toy.on
    assert errors(toy) == ['-113,"Undefined header"']


def test_common_commands_keep_the_path_and_a_trailing_semicolon_is_harmless(toy: Toy) -> None:
    assert toy.handle(":SOUR:VOLT:MODE SWE;*CLS;LEV 3;") is None
    assert toy.level == 3.0 and toy.mode == "SWE"


def test_command_error_discards_the_rest_of_the_message(toy: Toy) -> None:
    toy.handle(":BOGUS 1;:SOUR:VOLT 4")
    assert toy.level == 0.0
    assert errors(toy) == ['-113,"Undefined header"']


def test_execution_error_does_not_stop_the_message(toy: Toy) -> None:
    toy.handle(":SOUR:VOLT 99;:OUTP ON")
    assert toy.level == 0.0 and toy.on
    assert errors(toy) == ['-222,"Parameter data out of range"']


def test_parameter_errors_have_the_instrument_codes(toy: Toy) -> None:
    toy.handle(":SOUR:VOLT")
    toy.handle(":SOUR:VOLT 1,2")
    toy.handle(":SOUR:VOLT:MODE BANANA")
    toy.handle(":OUTP MAYBE")
    toy.handle(":SOUR:VOLT abc")
    assert errors(toy) == [
        '-109,"Missing parameter"',
        '-108,"Parameter not allowed"',
        '-224,"Illegal parameter value"',
        '-224,"Illegal parameter value"',
        '-104,"Data type error"',
    ]


def test_min_max_def_up_down(toy: Toy) -> None:
    toy.handle(":SOUR:VOLT MAX")
    assert toy.level == 21
    toy.handle(":SOUR:VOLT MIN")
    assert toy.level == -21
    toy.handle(":SOUR:VOLT DEF")
    assert toy.level == 0.0
    toy.handle(":SOUR:VOLT UP")
    assert toy.level == 21
    toy.handle(":SOUR:VOLT DOWN;:SOUR:VOLT DOWN")
    assert toy.level == -21


def test_boolean_forms(toy: Toy) -> None:
    for word, expected in [("ON", True), ("0", False), ("1", True), ("off", False)]:
        toy.handle(f":OUTP {word}")
        assert toy.on is expected
        assert toy.handle(":OUTP:STAT?") == str(int(expected))


def test_lists_and_quoted_parameters() -> None:
    assert split_params("1, 2,3") == ["1", "2", "3"]
    assert split_params("'CURR','VOLT'") == ["'CURR'", "'VOLT'"]
    assert split_params('"a,b", c') == ['"a,b"', "c"]
    assert split_params("") == []
    assert parse_choice("'CURR'", ("CURRent", "VOLTage")) == "CURR"


def test_one_splitter_for_units_and_parameters() -> None:
    """``;`` and ``,`` inside a quoted string separate nothing, in either quote."""
    assert split_outside_quotes(":A 1;:B 'x;y';C", ";") == [":A 1", ":B 'x;y'", "C"]
    assert split_outside_quotes("\"a;b\",'c,d'", ",") == ['"a;b"', "'c,d'"]
    assert split_outside_quotes("a;;b;", ";") == ["a", "", "b", ""]
    assert split_outside_quotes("'a;b", ";") == ["'a;b"]  # unterminated: the rest is quoted


def test_list_parameter(toy: Toy) -> None:
    toy.handle(":SOUR:LIST:VOLT 1,2, 3.5")
    assert toy.values == [1.0, 2.0, 3.5]
    assert toy.handle(":SOUR:LIST:VOLT?") == "+1.000000E+00,+2.000000E+00,+3.500000E+00"


def test_common_commands(toy: Toy) -> None:
    assert toy.handle("*IDN?") == "ACME,TOY,1,0.1"
    assert toy.handle("*ESR?") == "128"  # power-on, cleared by reading it
    assert toy.handle("*ESR?") == "0"
    toy.handle(":SOUR:VOLT 5;:OUTP 1")
    toy.handle("*RST")
    assert (toy.level, toy.on) == (0.0, False)
    assert toy.handle("*OPC?") == "1"
    toy.handle("*ESE 60;*SRE 32")
    assert toy.handle("*ESE?;*SRE?") == "60;32"
    toy.handle(":NOPE")
    stb = int(toy.handle("*STB?"))
    assert stb & 4  # error available
    assert int(toy.handle("*ESR?")) & 32  # command error
    toy.handle("*CLS")
    assert toy.handle(":SYST:ERR:NEXT?") == '0,"No error"'
    assert toy.handle("*WAI") is None


def test_error_queue_is_fifo_and_overflows_with_350(toy: Toy) -> None:
    for _ in range(15):
        toy.handle(":NOPE")
    got = errors(toy)
    assert len(got) == 10
    assert got[:9] == ['-113,"Undefined header"'] * 9
    assert got[-1] == '-350,"Queue overflow"'
    assert toy.handle(":SYST:ERR?") == '0,"No error"'


def test_unread_reply_is_interrupted_by_a_new_message(toy: Toy) -> None:
    toy.write("*IDN?")
    toy.write(":SOUR:VOLT?")  # the IDN reply was never read
    assert toy.read() == "+0.000000E+00"
    with pytest.raises(NoReply):
        toy.read()
    assert errors(toy) == ['-410,"Query INTERRUPTED"', '-420,"Query UNTERMINATED"']


def test_set_only_or_query_only_forms_are_undefined(toy: Toy) -> None:
    toy.handle("*IDN")
    toy.handle(":SYST:ERR")
    assert toy.handle(":SYST:ERR?") == '-113,"Undefined header"'


def test_scpi_error_carries_code_and_message() -> None:
    exc = SCPIError(-222)
    assert (exc.code, exc.message) == (-222, "Parameter data out of range")
    assert str(exc) == '-222,"Parameter data out of range"'


def test_status_registers_sum_into_the_status_byte(toy: Toy) -> None:
    register, bit = toy.status["OPERation"]
    toy.handle(":STAT:OPER:ENAB 1024;*SRE 128")
    assert toy.handle(":STAT:OPER:ENAB?") == "1024"
    register.signal(1024)
    assert int(toy.handle("*STB?")) == 128 | 64  # OSB, and MSS through the SRE
    assert toy.handle(":STAT:OPER?") == "1024"  # reading the event register clears it
    assert int(toy.handle("*STB?")) == 0
    register.set_condition(8)
    assert toy.handle(":STAT:OPER:COND?") == "8"
    register.signal(1024)
    toy.handle("*CLS")  # clears events, keeps enables
    assert toy.handle(":STAT:OPER?;:STAT:OPER:ENAB?") == "0;1024"
    toy.handle(":STAT:PRES")  # enables back to 0
    assert toy.handle(":STAT:OPER:ENAB?;:STAT:QUES:ENAB?") == "0;0"


def test_trg_with_nothing_waiting_is_ignored_with_211(toy: Toy) -> None:
    toy.handle("*TRG")
    assert errors(toy) == ['-211,"Trigger ignored"']


def test_numbered_nodes_need_their_number() -> None:
    tree = CommandTree()
    tree.add(":CALCulate3:DATA", query=lambda _: "3")
    tree.add(":CALCulate:DATA", query=lambda _: "1")
    assert tree.find(["CALC3", "DATA"]).pattern == ":CALCulate3:DATA"
    assert tree.find(["CALC1", "DATA"]).pattern == ":CALCulate:DATA"
    assert tree.find(["CALC", "DATA"]).pattern == ":CALCulate:DATA"
    assert tree.find(["CALC2", "DATA"]) is None
