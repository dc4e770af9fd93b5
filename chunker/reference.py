"""Pure-Python FastCDC: the executable specification of where chunks are cut.

Concern: define the cut points, slowly and obviously.  The native kernel
(fastcdc_scan.c) must cut at exactly the same offsets; tests compare the two
on random, constant, repetitive and text data.  Nothing in production calls
this module's cutting code -- only the gear table and the masks are shared.

The algorithm (FastCDC, Xia et al. 2020, with normalized chunking level 2):

* A chunk starts at offset 0 of what is left.  If at most ``min_size`` bytes
  are left, they are the (last) chunk.
* Only the first ``max_size`` bytes are looked at; call that count ``n``.
* The fingerprint ``fp`` starts at 0 and absorbs bytes from offset
  ``min_size`` on: ``fp = (fp << 1) + GEAR[byte] mod 2**64`` (cut-point
  skipping: nothing before ``min_size`` can end a chunk).
* After absorbing the byte at offset ``i`` the chunk ends there (length
  ``i + 1``) if ``fp & mask == 0``, where ``mask`` is ``mask_s`` while
  ``i < avg_size`` and ``mask_l`` from then on.  ``mask_s`` has two bits more
  than log2(avg_size), ``mask_l`` two fewer: cuts are unlikely before the
  average and likely after it, which narrows the size distribution.
* Without such a byte the chunk is ``n`` bytes long.

The masks are the top bits of the fingerprint, because bit ``k`` of ``fp``
depends on the last ``k + 1`` bytes only: the high bits see the widest window.

Invariants: every chunk but the last has at least ``min_size`` bytes and at most
``max_size``; a cut depends only on the bytes from the chunk start to at most
``max_size`` bytes later.  Changing anything here (table, masks, rule) moves
cuts, which silently ends deduplication against every image already stored.
"""

from __future__ import annotations

_M64 = (1 << 64) - 1

#: Seed of the splitmix64 generator that produced GEAR (ASCII "casglanc").
GEAR_SEED = 0x636173676C616E63


def splitmix64(seed: int, count: int) -> list[int]:
    """``count`` successive outputs of splitmix64 (Steele et al.) from ``seed``.

    Only used to document (and test) where GEAR came from; GEAR itself is a
    literal so that no one can change it by "improving" this function.
    """
    out = []
    state = seed
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & _M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        out.append(z ^ (z >> 31))
    return out


#: splitmix64(GEAR_SEED, 256), pasted once; fastcdc_scan.c holds the same list.
GEAR = (
    0xd4bdf2177167bdad, 0x38e97d0b1667db8c, 0x1644eb59a9746806, 0xd997f2b7c6fc4355,
    0x487baa27c5bb7785, 0xe5853d0bcba2f56f, 0xc5af51cfb70489ab, 0x01c45a9363964182,
    0xcaf0f86199174630, 0x862761df789dff57, 0x700412393e16a01c, 0x2ed8be00560c3dc5,
    0x153e2f000c911ba3, 0x666e6fdbc9c90454, 0xef47e844853cb742, 0x587777b998eac6eb,
    0xa233edaacc73f2dd, 0xe15aea3eef80f14e, 0xaf2e1c63ca73ab90, 0xaeaf299a5d12d474,
    0x8792603f22162f41, 0x2535d5cf7d6bffc8, 0x6322ace1415ea943, 0x9cb16fcbe8fb7039,
    0x8f84bcd846326279, 0xe77a6b8d130c897e, 0xa3461cb68e681358, 0x1faf1f5ab14c313f,
    0xb53deeaf004024a4, 0xab03afa036cb24ac, 0x849a66b5e7b59046, 0xd95aa21bd951ebd7,
    0xd6422bc9aafaa005, 0x31ddf38bfac92d23, 0x505a062475fb5fa7, 0x1d0b235712e9e1f1,
    0x0265293cc027ee97, 0x488ea366534e8a20, 0xe5c180077e23f366, 0x839ed62493ae77c5,
    0x0d41ee058204cea2, 0xe234e3632310d06a, 0xa4650455684bbb7e, 0x921eefacb5e2bcc5,
    0x095cd70595191d62, 0x730a86b27e6a4e76, 0x031a355efd4275b0, 0x5c8bd3c1fb420f80,
    0x2b03439af22325da, 0x064df534675a6c52, 0x9e129b4b68398985, 0x4f6be3e2a9a8afc2,
    0x01ec36f3a97dffc6, 0x50d9d376a494d3b0, 0x2008d458ea6eb6d3, 0x8e3886df45c11b3c,
    0x1ed6abc389ec8408, 0x2354a30fbf0d1850, 0xd8a429b36be07fa2, 0x0f4dd1c05239bfd3,
    0xc704a2e3108ee721, 0x8d5a5ef8f8cbe42a, 0xad2c944ebba876b2, 0xb1b931689969dbc0,
    0xe077fbc57e8a2d17, 0x6dec6d6d0e5e5365, 0xf16d591e56f0fad6, 0x389773446e57ec4b,
    0x576d0e4ed6ce14fd, 0x8529751b68cdb2ca, 0x26fe33624ea12bb4, 0xd83f67e679bd7705,
    0x521a30853fa5b272, 0x4eb7311b7baa1b2a, 0xc49dd23debc25f23, 0xfa8b81ba84d52684,
    0x2d111852adeb234f, 0x54a087cce6ad2c52, 0x362501035fd21c1d, 0x727dc42fc61635e4,
    0x59759e4507ffacd0, 0xe79576593b0a3a2c, 0x21395426897c856d, 0x9e66e241d8162877,
    0xc9f83dcd25156b78, 0xb27395f2e48c6d9d, 0xf150742d21b3d97d, 0x14964d66bc8f1f15,
    0x91bc88d1fac795ff, 0xe96801abe7693090, 0x90ac9a5086a0ff0d, 0xa4d5b1ab966e6607,
    0x5ee386a770251a84, 0x68c6e531cc974b48, 0x6fa2eaf77d7ce91b, 0x74e9e79ce483228d,
    0xdb89f47e51a15b91, 0xb223543a4cf37b57, 0xdc10b806b9cd84d6, 0x718f1a194643bc8f,
    0x0568ffc7819fe9ac, 0xb15d784888e68099, 0x2ee560459116bcea, 0x5bce5cfbb69749b5,
    0xb077e93d5f31cc9f, 0x8d3bf7da8c5eac27, 0xffc89d9c0234a0f9, 0x7644faaa507fc484,
    0xa3af4db3f733b4d0, 0xedecd4b92cd654c4, 0x753e35d2c63d4498, 0x3616572a69493141,
    0x77e0ed79a25b6690, 0x0a8863892f2eb670, 0x30705a9055a38afa, 0x2bf4f95c08fce2f2,
    0x7c3bf45462dd9e03, 0x16e5934ffbddd79c, 0x98c7df93e5461ccd, 0x97b1e12439bc4922,
    0x86e4b54421a135b2, 0x50829a79f1901922, 0x28da4539a9521b80, 0x2afd2e04dda3cf63,
    0x797add7cae6b0f99, 0xc779c88a7bda494c, 0xc25b71ec96629ab3, 0x8c29d0dff0fef6ea,
    0xb73bcaffd5e70f90, 0xe353790d700d19a2, 0x802312346870a773, 0x498a7f638b4c3766,
    0x376c9f0c18db48fe, 0xca832d3cf2021174, 0x238d177e14b2c13e, 0x6868e6407f32fd3c,
    0x9ce40be27c35a413, 0x9a6c3446a00f15ea, 0xc37cd14ee7ca13a4, 0x63f1fc7bec089edd,
    0xe1c2bc157bf06ac3, 0xdfe8f19149e2b1cf, 0xeb9c6b9c63d8da07, 0x953bf9a5d7b8eaf9,
    0x42b471e59640290d, 0xbc4e71281082961d, 0x247e2a4c73d3d7f9, 0xe209b3f7f96581e0,
    0x35775355ca7048e8, 0xd5e78ccf48cb2e39, 0x0152efaef6ba5ee0, 0x506e3696d8953406,
    0x3b9ca96b7ab604dd, 0x2c8b2bf2c5cb51ee, 0x3d91f1beaf5ed30f, 0x912518581b5f2cda,
    0x95ca520e8272052f, 0x2aa09c229b07882a, 0x22da711ecb3ecd4a, 0x964f1b8a6be29a09,
    0xb533787ec4cabcd4, 0xe1201a035fd196d3, 0x1b2141e4698eba46, 0x0fad29eb70340843,
    0xf86361ac0baf263e, 0x1bf381588ce31391, 0x65befc97e34aa099, 0xc363f92d203fada3,
    0x01a50520c53a74ea, 0x2273de2a3d3f6171, 0xe276c7530df66216, 0x372a1477f1660b45,
    0x40db80f2187b4c90, 0xc0e0da137c862021, 0x66b4c86c8596ab38, 0x38b8a92acc8f4503,
    0xf8cd517e4c9f85d0, 0xd01be8c5bc5e2b63, 0x6026ccac21cbdbeb, 0xb28feec03a6088a9,
    0x158382643b3d753e, 0x928d662829859397, 0x93fb5a47273e9a5e, 0xbb526097325b829b,
    0x26c192b8261897ae, 0x4a1a61c21698681d, 0x63c5948c41901185, 0xb340495d49f66482,
    0xd3e47ac1827ebfb1, 0xbf8984162cb95199, 0x4cd0185715b99705, 0x235c416fd17b0a5f,
    0xd0f0f665ec9b568f, 0x3c824c3452f39275, 0xaced7564032ee8ba, 0x4292b73aaf23f3f9,
    0x6a00b09b6f0f0320, 0x93c2a959fc3ebe19, 0xe40beabf669c4e3d, 0xf41c96c54f1354eb,
    0x58d13b3ecb2aeed0, 0xc04a172e90857f9b, 0xaa9ac8c2797b6921, 0x296f873dc15bfa38,
    0x4255d5adbde44d64, 0x83d7280926e5b135, 0xfe7803521f3696b1, 0x640333a6b6bb4195,
    0xca95a514813a8a7f, 0x7e32a6413b49503d, 0xe3f30101924f52ff, 0xfdc8dc09ba11d465,
    0xeb8693819df7a497, 0xcc4ce19ae3e6f4e3, 0xa272399b2b01413b, 0xc9781ffb34dcc9b8,
    0x54ffb01056f35c7b, 0x871a40e4fd0af9af, 0x5d2c4406f6653ce5, 0x04c590857a011fb8,
    0xcce3e58ab504f09b, 0x672e7d64e3dc4c13, 0xa16d17c82e6d83cc, 0xe0f8f3b9d006cca9,
    0x7c4ee6b0434c29f1, 0x2a077d9f8b909c01, 0xf315d9c2f64d0b6d, 0x5c4c87cdfd02b088,
    0x2fe31ea603f14ed5, 0xcbb2033a8c81d148, 0x4f50b69afd9dbec7, 0xdafc1947eaf6a730,
    0x1735c6156c19ff8e, 0x91ccd36f05e5b37c, 0x881ae5b1678a80e3, 0x20abaf3e203580c8,
    0xce1a44f0cf5aa75c, 0xd3349b6f1b9e02ad, 0x0240bdbb742b4a60, 0xf3f26efdeba9958f,
    0xba828fbfeac74d26, 0x32744ec4e10242c2, 0xb0efd6213260817a, 0xd2080e448dd079bf,
    0x1a99f5e78b6951e3, 0xc6aea3adc5a7376e, 0x0f380f81f9411070, 0xfbbc341ed3a61409,
    0x34a572bc4d392e0d, 0xcd396bc9d5e00a96, 0x3a507a7b4e782666, 0x97e8ea29ddb2ed2b,
    0x4a83cfab2ab69f01, 0xe401d3f7c9260b84, 0xc4f993b77766faee, 0xfbb979d11ebd1a21,
)


def masks(avg_size: int) -> tuple[int, int]:
    """(mask_s, mask_l) for a power-of-two ``avg_size``: the top
    log2(avg_size) + 2 and log2(avg_size) - 2 bits of a 64-bit word."""
    bits = avg_size.bit_length() - 1

    def top(nbits: int) -> int:
        return ((1 << nbits) - 1) << (64 - nbits)

    return top(bits + 2), top(bits - 2)


def next_cut(buf, start: int, end: int, min_size: int, avg_size: int, max_size: int) -> int:
    """Length of the chunk that starts at ``buf[start]``, given ``buf[start:end]``."""
    mask_s, mask_l = masks(avg_size)
    n = end - start
    if n <= min_size:
        return n
    n = min(n, max_size)
    normal = min(avg_size, n)
    fp = 0
    for i in range(min_size, n):
        fp = ((fp << 1) + GEAR[buf[start + i]]) & _M64
        if fp & (mask_s if i < normal else mask_l) == 0:
            return i + 1
    return n


def chunk_lengths(buf, min_size: int = 16384, avg_size: int = 65536, max_size: int = 262144) -> list[int]:
    """Lengths of the chunks of the whole of ``buf``; they sum to ``len(buf)``."""
    buf = memoryview(buf).cast("B")
    lengths = []
    pos = 0
    while pos < len(buf):
        cut = next_cut(buf, pos, len(buf), min_size, avg_size, max_size)
        lengths.append(cut)
        pos += cut
    return lengths
