"""benchmarks/kernel_asm.py reads the right things from assembly: loops and the bytes they store."""

ASM = """\
_fill:
\tmovq\t%rdi, %rax
.LBB0_2:
\tvpmuludq\t%zmm1, %zmm2, %zmm3
\tvmovdqu64\t%zmm3, 128(%rsp)
\tvmovups\t%zmm2, (%rsi,%r15,4)
\tvmovups\t%zmm1, 64(%rsi,%r15,4)
\tvpmovdw\t%zmm3, (%rdi)
\tvmovups\t(%rax), %zmm1
\tvmovdqu\t%ymm4, -32(%rdx)
\tjne\t.LBB0_2
\tretq
"""


def test_finds_the_backward_jump_loop(load_script):
    kernel_asm = load_script("benchmarks/kernel_asm.py")
    (body,) = list(kernel_asm._loops(ASM))
    assert body[0].startswith("vpmuludq") and body[-1].startswith("jne")
    assert len(body) == 8


def test_counts_stores_outside_the_stack_narrowing_ones_at_their_width(load_script):
    kernel_asm = load_script("benchmarks/kernel_asm.py")
    (body,) = list(kernel_asm._loops(ASM))
    # two zmm stores (128 bytes), vpmovdw of a zmm (32 bytes), a ymm store (32 bytes); the spill
    # to the stack and the load are not stores of values
    assert kernel_asm._stored_bytes(body) == 128 + 32 + 32
