package emulator

import (
	"hash/crc64"
	"io"
	"os"
)

// crc64Combine returns the CRC-64 (ECMA, as OSS's X-Oss-Hash-Crc64ecma) of A followed by B from
// the CRCs of A and B and B's length, without their bytes: OSS answers a Complete with the whole
// object's CRC, which the emulator so takes from its parts' as they arrived. zlib's
// crc32_combine, for 64 bits: appending len2 zero bytes to A is a linear map over GF(2), applied
// by squaring the one-zero-bit operator.
func crc64Combine(crc1, crc2 uint64, len2 int64) uint64 {
	if len2 <= 0 {
		return crc1
	}
	var even, odd [64]uint64
	odd[0] = crc64.ECMA // the operator for one zero bit
	row := uint64(1)
	for n := 1; n < 64; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four
	for {
		gf2Square(&even, &odd) // the first pass: one zero byte
		if len2&1 != 0 {
			crc1 = gf2Times(&even, crc1)
		}
		if len2 >>= 1; len2 == 0 {
			break
		}
		gf2Square(&odd, &even)
		if len2&1 != 0 {
			crc1 = gf2Times(&odd, crc1)
		}
		if len2 >>= 1; len2 == 0 {
			break
		}
	}
	return crc1 ^ crc2
}

func gf2Times(mat *[64]uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[64]uint64) {
	for n := range 64 {
		square[n] = gf2Times(mat, mat[n])
	}
}

// crcOfFile is the CRC-64 of a file's bytes.
func crcOfFile(name string) (uint64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := crc64.New(crcTable)
	_, err = io.Copy(h, f)
	return h.Sum64(), err
}
